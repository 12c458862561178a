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

The three sides run interleaved, in rounds of 10 cases each, their order rotated from
round to round, after a warm-up of each: this VM's speed (2 cores shared by many)
changes from second to second, and measuring one side after the other for seconds each
measured the load of those seconds as much as either side. The ratio is the median of
the per-round ratios (each round's sides ran within a fraction of a second of each
other); the tx/s are over all rounds. Client CPU per step (`time.process_time`) and, on
PostgreSQL, the server backends' CPU per step (/proc) say where a side's time goes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import START, TZ, fresh_postgres
from duban.clock import ManualClock
from duban.engine.audit import event_hash
from duban.service.app import App
from duban.storage.audit_log import CHAIN_LOCK
from duban.storage.database import Database


def _open(url: str, n: int) -> tuple[App, list[int]]:
    """A fresh app with 3n supervision cases waiting for `accept` (n for each side)."""
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


Step = Callable[[int], None]


def _rounds(n: int) -> int:
    """Rounds of 10 cases a side: a load burst on the VM lasts longer than a round, so it
    slows one round's sides alike rather than whichever side ran through it."""
    return max(5, n // 10)


def _warm_n(n: int) -> int:
    return max(5, n // 20)


def _interleaved(sides: dict[str, Step], ids: list[int], n: int,
                 server_cpu: Callable[[], float] | None = None) -> dict[str, dict[str, Any]]:
    """Run each side on its own share of `ids` (a warm-up, then n cases in rounds).

    Per side: wall seconds and client CPU seconds per round, and server CPU seconds in all."""
    names = list(sides)
    warm, rounds = _warm_n(n), _rounds(n)
    per = [ids[i * (n + warm):(i + 1) * (n + warm)] for i in range(len(names))]
    out: dict[str, dict[str, Any]] = {s: {"wall": [], "cpu": [], "server": 0.0} for s in names}
    for name, own in zip(names, per, strict=True):
        for case_id in own[:warm]:
            sides[name](case_id)
    bounds = [warm + (n * r) // rounds for r in range(rounds + 1)]
    for r in range(rounds):
        for j in range(len(names)):
            i = (j + r) % len(names)  # rotated: no side always runs first or right after another
            step, chunk = sides[names[i]], per[i][bounds[r]:bounds[r + 1]]
            before = server_cpu() if server_cpu else 0.0
            wall, cpu = time.perf_counter(), time.process_time()
            for case_id in chunk:
                step(case_id)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            out[names[i]]["server"] += (server_cpu() - before) if server_cpu else 0.0
            out[names[i]]["wall"].append(wall / len(chunk))
            out[names[i]]["cpu"].append(cpu / len(chunk))
    return out


def _quartiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def _figures(n: int, m: dict[str, dict[str, Any]], raw: str, server: bool) -> dict[str, Any]:
    def rate(side: str) -> int:
        return int(len(m[side]["wall"]) / sum(m[side]["wall"]) + 0.5)

    def ratios(side: str) -> list[float]:
        return [a / d for a, d in zip(m["raw"]["wall"], m[side]["wall"], strict=True)]

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 3)

    t, f = ratios("transition"), ratios("fire")
    out: dict[str, Any] = {
        "cases": n, "rounds": len(t), "warm_up": _warm_n(n),
        "duban_tx_per_s": rate("transition"), "fire_tx_per_s": rate("fire"), f"raw_{raw}_tx_per_s": rate("raw"),
        "ratio": round(statistics.median(t), 3), "ratio_quartiles": [round(q, 3) for q in _quartiles(t)],
        "ratio_of_totals": round(sum(m["raw"]["wall"]) / sum(m["transition"]["wall"]), 3),
        "fire_ratio": round(statistics.median(f), 3), "target_ratio": 0.5,
        "client_cpu_ms_per_step": {s: ms(statistics.mean(m[s]["cpu"])) for s in m},
        "wall_ms_per_step": {s: ms(statistics.mean(m[s]["wall"])) for s in m},
    }
    if server:
        out["server_cpu_ms_per_step"] = {s: ms(m[s]["server"] / n) for s in m}
    return out


def bench_sqlite(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "duban.db"
        app, ids = _open(f"sqlite:///{path}", n + _warm_n(n))
        now = app.clock.now()
        raw = sqlite3.connect(str(path), isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=FULL")  # duban's default durability
        cur = raw.cursor()

        def by_hand(case_id: int) -> None:
            cur.execute("BEGIN IMMEDIATE")
            _raw_step(cur, "?", case_id, now, postgres=False)
            cur.execute("COMMIT")

        m = _interleaved({"transition": lambda i: _ignore(app.transition(i, "accept", actor="unit")),
                          "fire": lambda i: _ignore(app.fire(i, "accept", actor="unit")), "raw": by_hand}, ids, n)
        raw.close()
        app.db.dispose()
    return _figures(n, m, "sqlite3", server=False)


def _ignore(_: object) -> None:
    return None


def _backends_cpu(admin: Any, db: str) -> Callable[[], float]:
    """CPU seconds used so far by the server processes serving `db` (0 if /proc is not readable).

    The kernel counts in clock ticks (10 ms here): the per-step figure means something over
    hundreds of steps, not in the smoke test's few."""
    tick = os.sysconf("SC_CLK_TCK")

    def total() -> float:
        seconds = 0.0
        for (pid,) in admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (db,)).fetchall():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # another host, or a backend that just ended
                continue
            seconds += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        return seconds

    return total


def bench_postgres(n: int) -> dict[str, Any]:
    import psycopg

    name = "duban_bench_transition"
    with fresh_postgres(name) as url:
        if url is None:
            return {"skipped": "no PostgreSQL server"}
        app, ids = _open(url, n + _warm_n(n))
        now = app.clock.now() + timedelta(0)
        dsn = url.replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(dsn) as raw, raw.cursor() as cur, \
                psycopg.connect(dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            sync = raw.execute("SHOW synchronous_commit").fetchone()
            raw.commit()

            def by_hand(case_id: int) -> None:
                _raw_step(cur, "%s", case_id, now, postgres=True)
                raw.commit()

            m = _interleaved({"transition": lambda i: _ignore(app.transition(i, "accept", actor="unit")),
                              "fire": lambda i: _ignore(app.fire(i, "accept", actor="unit")), "raw": by_hand},
                             ids, n, _backends_cpu(admin, name))
        app.db.dispose()
    return {**_figures(n, m, "psycopg", server=True), "synchronous_commit": sync[0] if sync else None}
