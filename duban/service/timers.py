"""Firing due timers: the sweep a scheduler node and `duban tick` run (SPEC §6).

Timers live in the `timers` table. A sweep repeats until nothing due is left:

1. claim a batch of due timers, oldest first (`duban.storage.claims.claim`: row locks with
   ``SKIP LOCKED`` and a lease), in one short transaction;
2. fire the batch a chunk at a time, one transaction per chunk (`fire_chunk`): lock the
   chunk's case rows in case-id order; per timer, fire any earlier unfired timer of its
   case first, mark the timer fired only if it is still this node's claim, and fire it;
   then commit the firings, the case changes, audit events and notices together. A timer
   therefore fires exactly once, whoever claimed it and whichever node died in between.
   A chunk that fails is rolled back and fired again one timer per transaction
   (`fire_claimed`), so only the timer at fault fails.

A firing the engine refuses (a `RefusedError`, e.g. a guard of the rung's trigger that a
timer cannot satisfy) is an outcome, not a failure: the case gets a `timer_refused` audit
event saying what was refused and why, nothing else of it changes, and the timer is done.
Only an unexpected exception (a bug, bad data) leaves the timer claimed, retried once its
lease runs out.

What firing needs from the application is `Office` (`duban.service.app.App` is one); the
engine is `office_engine`, built per sweep so a calendar imported meanwhile counts at once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from duban.engine.actors import SYSTEM
from duban.engine.model import Case, Event, Outcome
from duban.engine.replay import TIMER_REFUSED
from duban.engine.service import Engine
from duban.engine.timers import DueTimer
from duban.engine.workflow import Workflow
from duban.errors import ConcurrencyError, DubanError, RefusedError, StorageError
from duban.logconfig import bound, get_logger
from duban.storage import claims, uow
from duban.storage import repository as repo

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from duban.clock import Clock
    from duban.engine.ports import UnitOfWork as UnitOfWorkPort
    from duban.storage.database import Database
    from duban.storage.repository import NoticeWriter

LOGGER = "duban.scheduler"  # the scheduler's log lines, whichever module writes them
log = get_logger(LOGGER)

FIRE_ATTEMPTS = 3  # a timer whose case changed underneath is re-read and fired again this often
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # PostgreSQL serialization failure, deadlock detected


class Office(Protocol):
    """What firing timers needs from the application: its database, clock and zone, the
    definition each case is pinned to, and where routed notices go (SPEC §14)."""

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def tz(self) -> tzinfo: ...

    @property
    def outbox(self) -> NoticeWriter | None: ...

    def workflow_of(self, conn: Connection, case: Case) -> Workflow: ...


def office_engine(work: UnitOfWorkPort, tz: tzinfo) -> Engine:
    """The engine as the office's calendar stands in ``work``'s transaction: the one way an engine
    is built (a sweep builds its own each time; `App` keeps the one it built until a calendar import)."""
    from duban.workflows import office_rest_day_start

    # a case received on a rest day is counted as the office's settings say (SPEC §16)
    return Engine(work.calendar(office_rest_day_start()), tz)


def default_node() -> str:
    """HOST-PID: unique per running process, so default-named nodes never share claims."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Fired:
    """One timer fired: what fired, and the lines the engine wrote about it."""

    timer: DueTimer
    lines: list[str]
    taken_over: bool  # an earlier timer of the same case, fired first to keep due order
    refused: str | None = None  # the engine refused its step: why (audited; the timer is done all the same)


@dataclass
class SweepResult:
    """What one sweep did."""

    node: str
    now: datetime
    claimed: int = 0
    fired: int = 0
    skipped: int = 0  # claims no longer ours when we came to fire them (taken over or cancelled)
    failed: int = 0  # left claimed until the lease runs out (or the node stops), then retried
    released: int = 0  # given back unfired because a stop was requested
    refused: int = 0  # done, but the engine refused their step: a `timer_refused` audit event each
    lines: list[str] = field(default_factory=list)
    keep_lines: bool = True  # False for the daemon's sweeps: nobody reads them, and a catch-up may fire millions
    stopped: bool = False
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"node": self.node, "now": self.now.isoformat(), "claimed": self.claimed, "fired": self.fired,
                "skipped": self.skipped, "failed": self.failed, "released": self.released, "refused": self.refused,
                "stopped": self.stopped, "seconds": round(self.seconds, 3), "lines": self.lines}


# -- one firing transaction ----------------------------------------------------------
def fire_chunk(office: Office, engine: Engine, timers: Sequence[DueTimer], node: str,
               now: datetime) -> list[list[Fired]]:
    """Fire timers `node` claimed (in due order), all in one transaction with everything
    their firings change; per timer, what fired.

    The cases' rows are locked first, in case-id order (see `claims.lock_cases`). A timer's
    list is empty if it is no longer ours: another node took it over after our lease ran
    out, it fired as an earlier timer of its case, or a person's action cancelled it.
    Earlier due timers of the same case that are still unfired (claimed by another node
    that has not got to them yet) fire first, so a case's ladder runs in due order. Each
    timer is marked fired by a conditional UPDATE before it fires, so whatever happens to
    the transaction, a timer fires at most once, and a rolled-back chunk fires nothing.
    """
    # The unit of work's identity map keeps each case as read, so a firing writes only the columns it changed.
    with office.db.write() as conn, uow.UnitOfWork(conn):
        cases = claims.lock_cases(conn, [t.case_id for t in timers])
        unfired = claims.unfired_due(conn, list(cases), now)
        # The common case is marked fired in one statement: a case's first timer in the chunk
        # with nothing earlier left unfired. The others are marked one by one as they come.
        alone = _alone(timers, unfired)
        marked = claims.mark_fired(conn, sorted(alone), node, now)
        batch = repo.Batch(conn, office.outbox)  # notices of routed kinds get their deliveries here (SPEC §14)
        step = _Step(conn, batch, engine, cases, now)
        changed: set[int] = set()  # cases a firing in this chunk changed: their timers are read again
        done: list[list[Fired]] = []
        for timer in timers:
            case = cases.get(timer.case_id)
            if case is None:
                done.append([])
                continue
            wf = office.workflow_of(conn, case)
            if timer.id in alone:
                fired = [step.fire(wf, timer, taken_over=False)] if timer.id in marked else []
            else:
                if timer.case_id in changed:
                    unfired.update(claims.unfired_due(conn, [timer.case_id], now))
                fired = _fire_in_order(step, wf, claims.up_to(unfired[timer.case_id], timer), timer, node)
            if fired:
                changed.add(timer.case_id)
            done.append(fired)
        batch.flush()
        return done


def _alone(timers: Sequence[DueTimer], unfired: dict[int, list[claims.Unfired]]) -> set[int]:
    """Timers that are the first of their case in the chunk, with no earlier unfired timer."""
    seen: set[int] = set()
    alone = set()
    for t in timers:
        if t.case_id in unfired and t.case_id not in seen:
            todo = claims.up_to(unfired[t.case_id], t)
            if len(todo) == 1 and todo[0][0].id == t.id:
                alone.add(t.id)
        seen.add(t.case_id)
    return alone


def fire_claimed(office: Office, engine: Engine, timer: DueTimer, node: str, now: datetime) -> list[Fired]:
    """Fire one claimed timer in its own transaction (a chunk of one)."""
    return fire_chunk(office, engine, [timer], node, now)[0]


def _fire_in_order(step: _Step, wf: Workflow, todo: list[claims.Unfired], timer: DueTimer, node: str) -> list[Fired]:
    """Fire `timer` after the earlier unfired timers of its case (`todo`, ending with it)."""
    last, status, claimed_by = todo[-1] if todo else (None, None, None)
    if last is None or last.id != timer.id or (status, claimed_by) != (claims.CLAIMED, node):
        return []
    fired: list[Fired] = []
    for earlier, _status, _by in todo[:-1]:
        if claims.take_over(step.conn, earlier.id, step.now):
            fired.append(step.fire(wf, earlier, taken_over=True))
    # False when an earlier timer's step just cancelled this one (its deadline ended).
    if claims.mark_fired(step.conn, [timer.id], node, step.now):
        fired.append(step.fire(wf, timer, taken_over=False))
    return fired


@dataclass(frozen=True)
class _Step:
    """Firing marked timers inside a chunk's transaction."""

    conn: Connection
    batch: repo.Batch
    engine: Engine
    cases: dict[int, Case]  # the chunk's locked cases, each updated in place (state, version) by its firings
    now: datetime

    def fire(self, wf: Workflow, timer: DueTimer, *, taken_over: bool) -> Fired:
        case = self.cases[timer.case_id]
        try:
            out = self.engine.fire_timer(wf, case, timer, self.now)
        except RefusedError as exc:
            # The engine may have changed the case before it refused: read it again as this
            # transaction has it, and record the refusal on it, nothing else.
            case = self.cases[timer.case_id] = repo.load_cases(self.conn, [timer.case_id])[timer.case_id]
            out = refusal(wf, case, timer, exc, self.now)
            repo.commit_outcome(self.conn, out, self.now, self.batch)
            return Fired(timer, out.fired, taken_over, refused=str(exc))
        repo.commit_outcome(self.conn, out, self.now, self.batch)
        return Fired(timer, out.fired, taken_over)


def refusal(wf: Workflow, case: Case, timer: DueTimer, exc: RefusedError, now: datetime) -> Outcome:
    """The audit event of a timer whose step the engine refused: which rung of which deadline,
    the trigger it would have fired, and the refusal; the case itself stays as it was."""
    spec = wf.deadline_specs(case.data).get(timer.deadline)
    label = spec.label if spec is not None else timer.deadline
    try:
        rung = wf.rung(timer.deadline, timer.rung)
        rung_label, trigger = rung.label, rung.trigger
    except (KeyError, IndexError):  # not in this definition any more: its identifiers will do
        rung_label, trigger = f"#{timer.rung}", None
    data = {"deadline": timer.deadline, "rung": timer.rung, "rung_label": rung_label,
            "timer_due_at": timer.due_at.isoformat(), "trigger": trigger, "refusal": str(exc),
            "error": type(exc).__name__}
    out = Outcome(case)
    out.events.append(Event(TIMER_REFUSED, SYSTEM.name, SYSTEM.role, now, from_state=case.state, to_state=case.state,
                            note=f"{label}：{rung_label}未能执行：{exc}", data=data))
    out.fired.append(f"案件 {case.id} {label} {rung_label} 未能执行：{exc}（已记入审计）")
    return out


def _retryable(exc: Exception) -> bool:
    """A conflict worth re-reading the case for: a version clash, or a PostgreSQL deadlock or
    serialization failure (possible only against writers that skip the case lock, e.g. `duban tick`)."""
    if isinstance(exc, ConcurrencyError):
        return True
    orig = getattr(exc.__cause__, "orig", None)
    return isinstance(exc, StorageError) and getattr(orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


# -- a sweep -------------------------------------------------------------------------
class Sweep:
    """Claim and fire due timers for one node until none is left or `stopping()` says so."""

    def __init__(self, office: Office, node: str, *, batch: int, chunk: int, lease: float,
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.office = office
        self.node = node
        self.batch = batch  # timers claimed per claim transaction
        self.chunk = chunk  # claimed timers fired per firing transaction
        self.lease = lease  # seconds a claim stays ours
        self.stopping = stopping

    def run(self, keep_lines: bool = True) -> SweepResult:
        """Claim and fire batches until nothing due is left (or a stop is requested); with
        `keep_lines`, the result lists what fired (`--once` and `duban tick` print it)."""
        started = time.perf_counter()
        office = self.office
        result = SweepResult(self.node, office.clock.now(), keep_lines=keep_lines)
        with bound(node=self.node):  # structlog loads only if a line is logged
            with uow.read(office.db) as work:
                engine = office_engine(work, office.tz)  # per sweep: a calendar imported meanwhile counts
            while not self.stopping():
                now = office.clock.now()
                with office.db.write() as conn:
                    batch = claims.claim(conn, self.node, now, timedelta(seconds=self.lease), self.batch)
                if not batch:
                    break
                result.claimed += len(batch)
                self._fire_batch(engine, batch, result)
            result.stopped = self.stopping()
            result.seconds = time.perf_counter() - started
            log.info("sweep.done", now=result.now.isoformat(), claimed=result.claimed, fired=result.fired,
                     skipped=result.skipped, failed=result.failed, released=result.released, refused=result.refused,
                     stopped=result.stopped, seconds=round(result.seconds, 3))
        return result

    def _fire_batch(self, engine: Engine, batch: list[DueTimer], result: SweepResult) -> None:
        """Fire a claimed batch a chunk (one transaction) at a time; a chunk that fails is rolled
        back and fired again one timer per transaction, so only the timer at fault fails."""
        for start in range(0, len(batch), self.chunk):
            if self.stopping():
                self._release(batch[start:], result)
                return
            chunk = batch[start : start + self.chunk]
            now = self.office.clock.now()
            try:
                fired = fire_chunk(self.office, engine, chunk, self.node, now)
            except Exception as exc:
                if len(chunk) > 1:
                    log.info("chunk.one_by_one", timers=len(chunk), reason=str(exc), error=type(exc).__name__)
                self._fire_one_by_one(engine, chunk, result)
                continue
            for timer, timer_fired in zip(chunk, fired, strict=True):
                _record(timer, timer_fired, now, result)

    def _release(self, timers: list[DueTimer], result: SweepResult) -> None:
        with self.office.db.write() as conn:
            result.released += claims.release(conn, self.node, [t.id for t in timers])

    def _fire_one_by_one(self, engine: Engine, timers: list[DueTimer], result: SweepResult) -> None:
        for i, timer in enumerate(timers):
            if self.stopping():
                self._release(timers[i:], result)
                return
            with bound(case_id=timer.case_id, timer_id=timer.id):
                self._fire_one(engine, timer, result)

    def _fire_one(self, engine: Engine, timer: DueTimer, result: SweepResult) -> None:
        for attempt in range(1, FIRE_ATTEMPTS + 1):
            now = self.office.clock.now()
            try:
                fired = fire_claimed(self.office, engine, timer, self.node, now)
            except Exception as exc:
                if _retryable(exc) and attempt < FIRE_ATTEMPTS:
                    log.info("timer.retry", attempt=attempt, reason=str(exc))
                    continue
                if isinstance(exc, StorageError) and not _retryable(exc):
                    raise  # the database itself is failing: end the sweep, the next one retries
                # One bad timer (a bug, bad data) must not stop the others. It stays claimed, so
                # sweeps do not spin on it: retried once the lease runs out or this node stops.
                result.failed += 1
                log.error("timer.failed", reason=str(exc), error=type(exc).__name__,
                          retry_after_lease_seconds=self.lease,
                          traceback=None if isinstance(exc, DubanError) else traceback.format_exc())
                return
            _record(timer, fired, now, result)
            return


def _record(timer: DueTimer, fired: list[Fired], now: datetime, result: SweepResult) -> None:
    """Count and log one claimed timer's firing (after its transaction committed)."""
    verbose = logging.getLogger(LOGGER).isEnabledFor(logging.INFO)  # a busy sweep skips building the lines
    if not fired:
        result.skipped += 1
        if verbose:
            log.info("timer.skipped", case_id=timer.case_id, timer_id=timer.id,
                     reason="no longer claimed by this node (fired, taken over or cancelled)")
    for f in fired:
        if result.keep_lines:
            result.lines.extend(f.lines)
        if f.refused is not None:  # an outcome the case's audit chain records, not a failure to retry
            result.refused += 1
            log.warning("timer.refused", case_id=f.timer.case_id, timer_id=f.timer.id, deadline=f.timer.deadline,
                        rung=f.timer.rung, due_at=f.timer.due_at.isoformat(), reason=f.refused, taken_over=f.taken_over)
            continue
        result.fired += 1
        if verbose:
            log.info("timer.fired", case_id=f.timer.case_id, timer_id=f.timer.id, deadline=f.timer.deadline,
                     rung=f.timer.rung, due_at=f.timer.due_at.isoformat(),
                     late_seconds=round((now - f.timer.due_at).total_seconds()), taken_over=f.taken_over)
