"""The benchmark harness still runs (SPEC §11): `python -m bench all --quick` at tiny sizes.

Never a timed assert: it only checks that every section ran and reported a positive ratio,
so the harness does not rot between the runs that produce docs/performance.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SECTIONS = ("transition", "transition_postgres", "sweep", "audit", "startup", "memory", "http")
ROOT = Path(__file__).resolve().parents[2]


def test_bench_quick_runs_every_section(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "all", "--quick", "--scale", "0.05", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text(encoding="utf-8"))
    for section in SECTIONS:
        assert section in results, section
        if "skipped" in results[section]:  # no PostgreSQL server here
            continue
        assert results[section]["ratio"] > 0, (section, results[section])
    assert "| figure |" in done.stdout
