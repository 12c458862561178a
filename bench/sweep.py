"""Sweep: find and fire the due timers among many pending ones (SPEC §11).

Setup bulk-inserts rows directly (fast): one real case opened through the API is cloned
into `due` cases, each with its five timers; its sign-for reminder falls due at the sweep's
time, the others do not. Extra far-future timers bring the pending count up to `pending`.
The figure is the time `Scheduler.sweep` takes to fire the due timers with the default
`--batch` and `--chunk`; the anchor is raw sqlite3 firing the same number of due timers with
the same rows (claim a chunk by the (status, due_at) index; per timer: read the case, update
it, mark the timer fired, hash and insert the audit event; one commit per chunk of 200).
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import START, TZ, timed
from duban.clock import ManualClock
from duban.commands.daemon import Config, Scheduler
from duban.commands.scheduler import DEFAULT_BATCH, DEFAULT_CHUNK
from duban.engine.audit import event_hash
from duban.service.app import App
from duban.storage.database import Database

SWEEP_AT = datetime(2026, 11, 3, 16, 0, tzinfo=START.tzinfo)  # just after every case's sign-for deadline
CHUNK = 200


def _setup(path: Path, due: int, pending: int) -> App:
    clock = ManualClock(START)
    app = App(Database(f"sqlite:///{path}"), clock, TZ)
    app.init()
    app.add_user("office", "office", None)
    app.add_unit("区发改局")  # a case names a unit of the directory
    app.open_case("supervision", title="模板", lead_unit="区发改局", co_units=[], due="2026-12-31",
                  values={}, actor="office")
    app.db.dispose()
    raw = sqlite3.connect(str(path), isolation_level=None)
    raw.execute("BEGIN")
    template = raw.execute("SELECT * FROM cases WHERE id = 1").fetchone()
    timers = raw.execute("SELECT case_id, deadline, rung, due_at, approximate, status FROM timers"
                         " WHERE case_id = 1 ORDER BY id").fetchall()
    raw.executemany(f"INSERT INTO cases VALUES ({', '.join('?' * len(template))})",
                    ((case_id, *template[1:]) for case_id in range(2, due + 1)))
    raw.executemany("INSERT INTO case_units (case_id, unit, is_lead) VALUES (?, '区发改局', 1)",
                    ((case_id,) for case_id in range(2, due + 1)))
    raw.executemany("INSERT INTO timers (case_id, deadline, rung, due_at, approximate, status) VALUES (?,?,?,?,?,?)",
                    ((case_id, *t[1:]) for case_id in range(2, due + 1) for t in timers))
    extra = max(0, pending - 5 * due)  # each case has five pending timers, one of them due
    far = datetime(2027, 6, 1, tzinfo=START.tzinfo).replace(tzinfo=None)  # stored as naive UTC
    raw.executemany(
        "INSERT INTO timers (case_id, deadline, rung, due_at, approximate, status) VALUES (?, 'due', 0, ?, 0, 'pending')",
        ((i % due + 1, (far + timedelta(seconds=i)).isoformat(" ", "microseconds")) for i in range(extra)),
    )
    raw.execute("COMMIT")
    raw.execute("ANALYZE")
    raw.close()
    clock.set(SWEEP_AT)
    return App(Database(f"sqlite:///{path}"), clock, TZ)


def _raw_anchor(path: Path, n: int) -> float:
    """Raw sqlite3 firing n due timers with the same rows (see the module docstring)."""
    raw = sqlite3.connect(str(path), isolation_level=None)
    raw.execute("PRAGMA synchronous=FULL")
    cur = raw.cursor()
    now = SWEEP_AT.replace(tzinfo=None).isoformat(" ", "microseconds")
    fired = 0
    with timed() as t:
        while True:
            cur.execute("BEGIN IMMEDIATE")
            due = cur.execute("SELECT id, case_id FROM timers WHERE status = 'pending' AND due_at <= ?"
                              " ORDER BY due_at, id LIMIT ?", (now, CHUNK)).fetchall()
            if not due:
                cur.execute("COMMIT")
                break
            for timer_id, case_id in due:
                state, version, deadlines = cur.execute(
                    "SELECT state, version, deadlines FROM cases WHERE id = ?", (case_id,)).fetchone()
                d = json.loads(deadlines)
                d["sign_for"]["fired_rungs"] = [0]
                cur.execute("UPDATE timers SET status = 'fired', fired_at = ?, lease_until = NULL WHERE id = ?"
                            " AND status = 'pending'", (now, timer_id))
                cur.execute("UPDATE cases SET deadlines = ?, escalation_level = 1, version = ?, updated_at = ?"
                            " WHERE id = ? AND version = ?", (json.dumps(d), version + 1, now, case_id, version))
                seq, prev = cur.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
                record = {"seq": seq + 1, "case_id": case_id, "at": now, "actor": "system", "role": "system",
                          "action": "timer", "trigger": None, "from_state": state, "to_state": state,
                          "note": "签收提醒", "data": {"deadline": "sign_for", "rung": 0}, "prev_hash": prev}
                cur.execute('INSERT INTO audit_events (seq, case_id, at, actor, role, action, "trigger", from_state,'
                            " to_state, note, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                            (seq + 1, case_id, now, "system", "system", "timer", None, state, state, "签收提醒",
                             json.dumps(record["data"]), prev, event_hash(record)))
                fired += 1
            cur.execute("COMMIT")
    raw.close()
    assert fired == n, (fired, n)
    return n / t[0]


def bench_one(due: int, pending: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.db"
        app = _setup(path, due, pending)
        with app.db.read() as conn:
            total_pending = conn.exec_driver_sql("SELECT count(*) FROM timers WHERE status = 'pending'").scalar_one()
        sched = Scheduler(app, Config(node="bench", interval=0, batch=DEFAULT_BATCH, chunk=DEFAULT_CHUNK, lease=60,
                                      record=False))  # as `duban scheduler run` without options
        with timed() as t:
            result = sched.sweep()
        app.db.dispose()
        assert result.fired >= due, result.as_json()
        ours = result.fired / t[0]
        # reset the fired timers so the anchor finds the same number due
        raw = sqlite3.connect(str(path), isolation_level=None)
        raw.execute("UPDATE timers SET status = 'pending', fired_at = NULL, claimed_by = NULL, lease_until = NULL"
                    " WHERE status = 'fired'")
        raw.close()
        anchor = _raw_anchor(path, result.fired)
    return {"pending": int(total_pending), "due": due, "fired": result.fired, "seconds": round(t[0], 3),
            "duban_fired_per_s": round(ours), "raw_sqlite3_fired_per_s": round(anchor),
            "ratio": round(ours / anchor, 3), "target_fired_per_s": 5000}


def bench_sweep(due: int, pendings: list[int]) -> dict[str, Any]:
    runs = [bench_one(due, p) for p in pendings]
    return {"runs": runs, "ratio": runs[-1]["ratio"],
            "growth": round(runs[0]["duban_fired_per_s"] / runs[-1]["duban_fired_per_s"], 3)}
