"""Transition: `accept` on n supervision cases through `App.transition` vs the raw driver doing the same rows.

`App.transition` is the durable step the target speaks of (case, timers, audit event with
its hash, one commit). `App.fire` is the same step that also reads the case's timers back
and builds the view `case fire --json` prints; it is measured too (`fire_tx_per_s`), over
another n cases of the same run.

Both sides run one transaction per case at the default durability (SQLite WAL +
synchronous=FULL; PostgreSQL synchronous_commit as configured). The raw side does what a
hand-written program needs for the same step: read the case, update its changed columns
with the version check, cancel the sign-for timer, read the chain head, hash and insert
the audit event, commit.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import START, TZ, fresh_postgres, timed
from duban.clock import ManualClock
from duban.engine.audit import event_hash
from duban.service.app import App
from duban.storage.audit_log import CHAIN_LOCK
from duban.storage.database import Database


def _open(url: str, n: int) -> tuple[App, list[int]]:
    clock = ManualClock(START)
    app = App(Database(url), clock, TZ)
    app.init()
    app.add_user("office", "office", None)
    app.add_user("unit", "unit", "区发改局")
    ids = [app.open_case("supervision", title=f"任务{i}", lead_unit="区发改局", co_units=[], due="2026-12-31",
                         values={}, actor="office")["id"] for i in range(3 * n)]
    clock.advance(hours=1)
    return app, ids


def _raw_step(cur: Any, ph: str, case_id: int, now: Any, postgres: bool) -> None:
    """The same rows as App.fire(accept), written by hand (`ph` is the driver's placeholder)."""
    cur.execute(f"SELECT state, version, deadlines FROM cases WHERE id = {ph}", (case_id,))
    state, version, deadlines = cur.fetchone()
    deadlines = json.loads(deadlines) if isinstance(deadlines, str) else deadlines
    deadlines["sign_for"]["status"] = "ended"
    deadlines["sign_for"]["ended_at"] = now.isoformat()
    at = now if postgres else now.replace(tzinfo=None).isoformat(" ")
    cur.execute(f"UPDATE cases SET state = {ph}, deadlines = {ph}, version = {ph}, updated_at = {ph}"
                f" WHERE id = {ph} AND version = {ph}",
                ("in_progress", json.dumps(deadlines), version + 1, at, case_id, version))
    assert cur.rowcount == 1
    cur.execute(f"UPDATE timers SET status = 'cancelled', claimed_by = NULL, lease_until = NULL"
                f" WHERE case_id = {ph} AND deadline = 'sign_for' AND status IN ('pending', 'claimed')", (case_id,))
    if postgres:
        cur.execute(f"SELECT pg_advisory_xact_lock({ph})", (CHAIN_LOCK,))
    cur.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
    seq, prev = cur.fetchone()
    record = {"seq": seq + 1, "case_id": case_id, "at": now, "actor": "unit", "role": "unit", "action": "fire",
              "trigger": "accept", "from_state": state, "to_state": "in_progress", "note": "", "data": {},
              "prev_hash": prev}
    cur.execute(
        'INSERT INTO audit_events (seq, case_id, at, actor, role, action, "trigger", from_state, to_state, note,'
        f" data, prev_hash, hash) VALUES ({', '.join([ph] * 13)})",
        (seq + 1, case_id, at, "unit", "unit", "fire", "accept", state, "in_progress", "", "{}", prev,
         event_hash(record)),
    )


def _duban(app: App, ids: list[int]) -> tuple[float, float]:
    """Steps a second through `App.transition` (the first n ids) and `App.fire` (the next n)."""
    n = len(ids) // 3
    with timed() as t:
        for case_id in ids[:n]:
            app.transition(case_id, "accept", actor="unit")
    with timed() as f:
        for case_id in ids[n : 2 * n]:
            app.fire(case_id, "accept", actor="unit")
    return n / t[0], n / f[0]


def _figures(n: int, ours: tuple[float, float], anchor: float) -> dict[str, Any]:
    return {"cases": n, "duban_tx_per_s": round(ours[0]), "fire_tx_per_s": round(ours[1]),
            "ratio": round(ours[0] / anchor, 3), "fire_ratio": round(ours[1] / anchor, 3), "target_ratio": 0.5}


def bench_sqlite(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "duban.db"
        app, ids = _open(f"sqlite:///{path}", n)
        ours = _duban(app, ids)
        now = app.clock.now()
        app.db.dispose()
        raw = sqlite3.connect(str(path), isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=FULL")  # duban's default durability
        cur = raw.cursor()
        with timed() as t:
            for case_id in ids[2 * n :]:
                cur.execute("BEGIN IMMEDIATE")
                _raw_step(cur, "?", case_id, now, postgres=False)
                cur.execute("COMMIT")
        anchor = n / t[0]
        raw.close()
    return {**_figures(n, ours, anchor), "raw_sqlite3_tx_per_s": round(anchor)}


def bench_postgres(n: int) -> dict[str, Any]:
    import psycopg

    with fresh_postgres("duban_bench_transition") as url:
        if url is None:
            return {"skipped": "no PostgreSQL server"}
        app, ids = _open(url, n)
        ours = _duban(app, ids)
        now = app.clock.now() + timedelta(0)
        app.db.dispose()
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as raw, raw.cursor() as cur:
            sync = raw.execute("SHOW synchronous_commit").fetchone()
            with timed() as t:
                for case_id in ids[2 * n :]:
                    _raw_step(cur, "%s", case_id, now, postgres=True)
                    raw.commit()
            anchor = n / t[0]
    return {**_figures(n, ours, anchor), "raw_psycopg_tx_per_s": round(anchor),
            "synchronous_commit": sync[0] if sync else None}
