"""Exports stream (SPEC §7, §11): exporting 200,000 audit events keeps memory flat.

The events are generated fast — a valid chain built with the chain's own hash function
and written with Core bulk inserts — and each export runs in a fresh subprocess that
measures its own peak RSS (``ru_maxrss``) before and after the export. A list of all rows
would cost hundreds of megabytes; streaming costs a few batches. This measures memory,
never time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from duban.engine.audit import GENESIS, event_hash
from duban.exports.manifest import verify_export
from duban.storage.database import Database
from duban.storage.tables import AUDIT

EVENTS = 200_000
GROWTH_LIMIT_MB = 60
START = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)

# Runs in the subprocess: warm up (imports, first queries, the writer) with an export of an
# empty period, then export for real.
MEASURE = r"""
import json, resource, sys, time
from duban.cli import cli

db, fmt, out, *filters = sys.argv[1:]
def export(path, *extra):
    cli.main(["--db", db, "audit", "export", "--format", fmt, "--out", path, *extra], standalone_mode=False)
export(out + ".warm", "--until", "2000-01-01")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
export(out, *filters)
seconds = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (after - before) / 1024, "peak_mb": after / 1024, "seconds": seconds}))
"""


def generate(url: str, n: int, batch: int = 10_000) -> None:
    """n events forming a valid chain over 500 cases, inserted in batches."""
    db = Database(url)
    db.migrate()
    prev, rows = GENESIS, []
    with db.write() as conn:
        for seq in range(1, n + 1):
            record = {
                "seq": seq, "case_id": seq % 500 + 1, "at": START + timedelta(seconds=30 * seq), "actor": "王督查",
                "role": "office", "action": "fire", "trigger": "accept", "from_state": "assigned",
                "to_state": "in_progress", "note": f"第{seq}号督办事项：请于5个工作日内报送办理情况",
                "data": {"单位": "区发改局", "序号": seq}, "prev_hash": prev,
            }
            record["hash"] = prev = event_hash(record)
            rows.append(record)
            if len(rows) == batch:
                conn.execute(insert(AUDIT), rows)
                rows = []
        if rows:
            conn.execute(insert(AUDIT), rows)
    db.dispose()


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('big') / 'duban.db'}"
    generate(url, EVENTS)
    return url


def measure(url: str, fmt: str, out: Path, *filters: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", MEASURE, url, fmt, str(out), *filters],
                          capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def jsonl_export(big_db: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    out = tmp_path_factory.mktemp("export") / "audit.jsonl"
    return out, measure(big_db, "jsonl", out)


def manifest_of(export: Path) -> dict[str, object]:
    return dict(json.loads(export.with_name(export.name + ".manifest.json").read_text(encoding="utf-8")))


def test_jsonl_memory_stays_flat_for_200k_events(jsonl_export: tuple[Path, dict[str, float]]) -> None:
    """200,000 events go out with peak RSS growing by well under 60 MB, and all of them arrive."""
    out, stats = jsonl_export
    assert stats["growth_mb"] < GROWTH_LIMIT_MB, stats
    assert [manifest_of(out)[k] for k in ("rows", "first_seq", "last_seq")] == [EVENTS, 1, EVENTS]


def test_200k_export_reverifies_offline(jsonl_export: tuple[Path, dict[str, float]]) -> None:
    """The large JSONL export checks out against its manifest, event by event."""
    check = verify_export(jsonl_export[0])
    assert (check.ok, check.rows, check.last_seq) == (True, EVENTS, EVENTS), check.problem


def test_csv_memory_stays_flat_for_200k_events(big_db: str, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    stats = measure(big_db, "csv", out)
    assert stats["growth_mb"] < GROWTH_LIMIT_MB, stats
    assert manifest_of(out)["rows"] == EVENTS


def test_xlsx_streams_too(big_db: str, tmp_path: Path) -> None:
    """XLSX goes through openpyxl's write-only mode: 40,000 rows (520,000 cells) without holding them."""
    out = tmp_path / "audit.xlsx"
    until = (START + timedelta(seconds=30 * 40_000)).isoformat()
    stats = measure(big_db, "xlsx", out, "--until", until)
    assert stats["growth_mb"] < GROWTH_LIMIT_MB, stats
    assert manifest_of(out)["rows"] == 39_999
