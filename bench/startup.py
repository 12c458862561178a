"""Start-up: wall time of `duban --help` and `duban case show ID` (median of several runs),
each a fresh process, against the bare interpreter starting (`python -c pass`)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import START, TZ


def _wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_startup(runs: int) -> dict[str, Any]:
    from duban.app import App
    from duban.clock import ManualClock
    from duban.storage.database import Database

    duban = [sys.executable, "-c", "from duban.cli import main; main()"]
    script = Path(sys.executable).with_name("duban")
    if script.exists():
        duban = [str(script)]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'duban.db'}"
        app = App(Database(url), ManualClock(START), TZ)
        app.init()
        app.add_user("office", "office", None)
        case_id = app.open_case("supervision", title="启动测试", lead_unit="区发改局", co_units=[], due="2026-12-31",
                                values={}, actor="office")["id"]
        app.db.dispose()
        bare = _wall([sys.executable, "-c", "pass"], runs)
        helped = _wall([*duban, "--help"], runs)
        shown = _wall([*duban, "--db", url, "case", "show", str(case_id)], runs)
    return {"python_bare_s": round(bare, 3), "help_s": round(helped, 3), "case_show_s": round(shown, 3),
            "target_s": 0.3, "ratio": round(bare / max(helped, shown), 3)}
