"""Helpers for the scheduler tests: run `duban` as real processes, seed cases, read results.

Run as a script it is `duban` itself, optionally made to die at a chosen point, so a
test can kill a scheduler *inside* a firing transaction without guessing with sleeps:

    python scheduler_worker.py --kill-at 150 -- --db URL --now T scheduler run --once

``--kill-at K`` sends SIGKILL to the process in its K-th firing transaction (after the
timer was marked fired, before the commit); ``--term-at K`` sends SIGTERM there instead
(a clean stop request). Imported, it offers the helpers the test modules share.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")
OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)  # a Monday; 2026 has an official calendar
LATER = OPENED + timedelta(days=40)  # every rung of every seeded case is due by then
HERE = Path(__file__).resolve()
DUBAN = [sys.executable, "-c", "from duban.cli import main; main()"]
WORKER = [sys.executable, str(HERE)]
RUNG_COUNT = 5  # a supervision case opened in `assigned`: sign-for (1 rung) + due ladder (4 rungs)


# -- running duban as processes --------------------------------------------------------
def env() -> dict[str, str]:
    """The environment of a child `duban`: no pinned clock or actor inherited, INFO logs."""
    e = {k: v for k, v in os.environ.items() if k not in ("DUBAN_NOW", "DUBAN_ACTOR", "DUBAN_DB")}
    e["DUBAN_LOG_LEVEL"] = "INFO"
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parents[2]), os.environ.get("PYTHONPATH")) if p)
    return e


@dataclass
class Proc:
    """A running (or finished) child process whose output goes to files, never to a pipe that could fill."""

    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    def wait(self, timeout: float = 120) -> int:
        return self.popen.wait(timeout=timeout)

    @property
    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8")

    @property
    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8")

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines on stderr (the scheduler logs one per sweep and per fired timer)."""
        return [json.loads(line) for line in self.stderr.splitlines() if line.startswith("{")]


def spawn(args: Iterable[str], tmp: Path, name: str, *, kill_at: int | None = None, term_at: int | None = None) -> Proc:
    """Start `duban ARGS` (through this worker when a kill or stop point is given)."""
    cmd = [*DUBAN, *args]
    if kill_at is not None or term_at is not None:
        point = ["--kill-at", str(kill_at)] if kill_at is not None else ["--term-at", str(term_at)]
        cmd = [*WORKER, *point, "--", *args]
    out, err = tmp / f"{name}.out", tmp / f"{name}.err"
    with out.open("wb") as o, err.open("wb") as e:
        popen = subprocess.Popen(cmd, stdout=o, stderr=e, env=env())
    return Proc(popen, out, err)


def run_duban(args: Iterable[str], tmp: Path, name: str = "duban", timeout: float = 120) -> Proc:
    """Run `duban ARGS` to the end."""
    proc = spawn(args, tmp, name)
    proc.wait(timeout)
    return proc


def scheduler_args(url: str, now: datetime, node: str, *extra: str) -> list[str]:
    return ["--db", url, "--now", now.isoformat(), "scheduler", "run", "--once", "--node", node, *extra]


def wait_for(condition: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    """Bounded polling for another process to get somewhere (never used for time logic)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


# -- seeding -------------------------------------------------------------------------
def seed(url: str, cases: int, *, spread_days: int = 10, accept_every: int = 0) -> None:
    """Initialise the database and open `cases` supervision cases at OPENED through the App.

    Case i is due ``14 + i % spread_days`` days after opening, so every rung of every case
    is due by OPENED + 40 days. With `accept_every` = k, every k-th case is accepted the
    next morning (its sign-for timer is cancelled), so its ladder runs from `in_progress`.
    """
    from duban.clock import ManualClock
    from duban.service.app import App
    from duban.storage.database import Database

    clock = ManualClock(OPENED)
    db = Database(url)
    try:
        app = App(db, clock, TZ)
        app.init()
        app.add_user("wang", "office", None)
        app.add_user("fgj", "unit", "区发改局")
        ids = []
        for i in range(cases):
            due = (OPENED + timedelta(days=14 + i % spread_days)).date().isoformat()
            shown = app.open_case("supervision", title=f"督办事项{i + 1}", lead_unit="区发改局", co_units=[],
                                  due=due, values={}, actor="wang")
            ids.append(int(shown["id"]))
        armed = query(url, "SELECT count(*) FROM timers")[0][0]
        assert armed == cases * RUNG_COUNT, f"{armed} timers for {cases} cases: the supervision ladder changed, update RUNG_COUNT"
        if accept_every:
            clock.advance(hours=24)
            for case_id in ids[::accept_every]:
                app.fire(case_id, "accept", actor="fgj")
    finally:
        db.dispose()


def fire(url: str, case_id: int, trigger: str, actor: str, at: datetime, note: str = "") -> dict[str, Any]:
    """A person's action through the App (in this process), on its own connection pool."""
    from duban.clock import ManualClock
    from duban.service.app import App
    from duban.storage.database import Database

    db = Database(url)
    try:
        return App(db, ManualClock(at), TZ).fire(case_id, trigger, actor=actor, note=note)
    finally:
        db.dispose()


# -- reading results -----------------------------------------------------------------
def query(url: str, sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def query_write(url: str, sql: str, **params: Any) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def timer_statuses(url: str) -> Counter[str]:
    return Counter({r[0]: int(r[1]) for r in query(url, "SELECT status, count(*) FROM timers GROUP BY status")})


def fired_count(url: str) -> int:
    return timer_statuses(url)["fired"]


def escalations(url: str) -> list[dict[str, Any]]:
    """Every rung's audit event ('escalate', or 'overtaken' when a later rung was also due: no
    notice, SPEC §16), in chain order, with its (deadline, rung, timer due instant)."""
    rows = query(url, "SELECT seq, case_id, data FROM audit_events WHERE action IN ('escalate', 'overtaken') ORDER BY seq")
    out = []
    for seq, case_id, data in rows:
        d = data if isinstance(data, dict) else json.loads(data)
        out.append({"seq": seq, "case_id": case_id, "deadline": d["deadline"], "rung": d["rung"],
                    "timer_due_at": datetime.fromisoformat(d["timer_due_at"])})
    return out


def assert_fired_exactly_once(url: str, expected: int) -> list[dict[str, Any]]:
    """Each fired timer has exactly one escalation, none is duplicated, and no timer is left due."""
    events = escalations(url)
    keys = Counter((e["case_id"], e["deadline"], e["rung"]) for e in events)
    duplicated = {k: n for k, n in keys.items() if n > 1}
    assert duplicated == {}, f"fired more than once: {list(duplicated.items())[:5]}"
    fired = {(r[0], r[1], r[2]) for r in query(url, "SELECT case_id, deadline, rung FROM timers WHERE status = 'fired'")}
    assert set(keys) == fired, f"{len(fired - set(keys))} fired timers without escalation, {len(set(keys) - fired)} escalations without timer"
    assert len(events) == expected, f"{len(events)} escalations, expected {expected}"
    return events


def assert_per_case_due_order(events: list[dict[str, Any]]) -> None:
    """Within each case, escalations were recorded in the order their timers fell due."""
    by_case: dict[int, list[datetime]] = {}
    for e in events:
        by_case.setdefault(e["case_id"], []).append(e["timer_due_at"])
    out_of_order = [c for c, dues in by_case.items() if dues != sorted(dues)]
    assert out_of_order == [], f"cases fired out of due order: {out_of_order[:5]}"


def collect_garbage() -> None:
    """Collect what in-process CLI runs left (connection pools are closed by the collector)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def audit_verifies(url: str, tmp: Path) -> dict[str, Any]:
    proc = run_duban(["--db", url, "audit", "verify", "--json"], tmp, "verify")
    assert proc.popen.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    assert result["ok"] is True
    return result


# -- the worker entry point ------------------------------------------------------------
def _die_in_firing_transaction(at: int, signum: int) -> None:
    """Send `signum` to ourselves inside the `at`-th firing transaction, before it commits."""
    from duban.storage import repository

    original = repository.commit_outcome
    calls = 0

    def commit_outcome(conn: Any, out: Any, now: Any, batch: Any = None) -> Any:
        nonlocal calls
        calls += 1
        if calls == at:
            os.kill(os.getpid(), signum)
            if signum == signal.SIGKILL:  # pragma: no cover - never reached
                time.sleep(60)
        return original(conn, out, now, batch)

    repository.commit_outcome = commit_outcome  # type: ignore[assignment]


def main(argv: list[str]) -> None:
    sep = argv.index("--")
    point, args = argv[:sep], argv[sep + 1:]
    if point:
        how, at = point[0], int(point[1])
        _die_in_firing_transaction(at, signal.SIGKILL if how == "--kill-at" else signal.SIGTERM)
    from duban.cli import cli

    cli.main(args=args, prog_name="duban")


if __name__ == "__main__":
    main(sys.argv[1:])
