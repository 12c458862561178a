"""Benchmarks: `python -m bench [transition] [--quick]`.

Each figure is measured in the same run as its anchor (the raw database doing the same
writes) and reported as a ratio, so it holds on a noisy machine. Never run by the tests as
a timed assert. Issue 6 adds the sweep, export/verify, start-up and memory benchmarks.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from duban.app import App
from duban.clock import ManualClock
from duban.storage.database import Database

TZ = ZoneInfo("Asia/Shanghai")


def bench_transition(n: int) -> dict[str, float]:
    """`accept` on n supervision cases through App.fire vs raw sqlite3 doing the same rows."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'duban.db'}"
        clock = ManualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
        app = App(Database(url), clock, TZ)
        app.init()
        app.add_user("office", "office", None)
        app.add_user("unit", "unit", "区发改局")
        ids = [app.open_case("supervision", title=f"任务{i}", lead_unit="区发改局", co_units=[], due="2026-12-31",
                             values={}, actor="office")["id"] for i in range(n)]
        clock.advance(hours=1)
        start = time.perf_counter()
        for case_id in ids:
            app.fire(case_id, "accept", actor="unit")
        ours = n / (time.perf_counter() - start)

        # The same writes by hand: the case row, the cancelled sign-for timer, one audit event.
        raw = sqlite3.connect(str(Path(tmp) / "duban.db"), isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=FULL")
        seq = raw.execute("SELECT max(seq) FROM audit_events").fetchone()[0]
        start = time.perf_counter()
        for case_id in ids:
            seq += 1
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("UPDATE cases SET state='in_progress', version=version+1, updated_at=? WHERE id=? AND version=?",
                        ("2026-11-02 02:00:00", case_id, 2))
            raw.execute("UPDATE timers SET status='cancelled' WHERE case_id=? AND deadline='sign_for' AND status='pending'",
                        (case_id,))
            raw.execute("INSERT INTO audit_events (seq, case_id, at, actor, role, action, \"trigger\", from_state, to_state,"
                        " note, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (seq, case_id, "2026-11-02 02:00:00", "unit", "unit", "fire", "accept", "assigned",
                         "in_progress", "", "{}", "0" * 64, "0" * 64))
            raw.execute("COMMIT")
        anchor = n / (time.perf_counter() - start)
        raw.close()
        app.db.dispose()
    return {"duban_tx_per_s": round(ours), "raw_sqlite3_tx_per_s": round(anchor), "ratio": round(ours / anchor, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("which", nargs="?", default="all", choices=["all", "transition"])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run under a minute")
    parser.add_argument("--out", default="bench/results/latest.json")
    args = parser.parse_args()
    from duban.logconfig import configure

    configure()  # warnings only: per-step info lines would dominate the measurement
    n = 300 if args.quick else 3000
    results = {"transition": {"cases": n, **bench_transition(n)}}
    for name, r in results.items():
        print(f"{name:<12} " + "  ".join(f"{k}={v}" for k, v in r.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version, **results}, indent=2))


if __name__ == "__main__":
    main()
