"""The scheduler daemon: claims due timers from the database and fires them (SPEC §6).

Timers live in the `timers` table, never in APScheduler: APScheduler 3.x only drives one
in-process *sweep* job (memory job store, ``coalesce=True``, ``max_instances=1``), so a
restart loses nothing and several processes can share one PostgreSQL database
(LIBRARIES.md §2). A sweep repeats until nothing due is left:

1. claim a batch of due timers, oldest first (`duban.storage.claims.claim`: row locks with
   ``SKIP LOCKED`` and a lease), in one short transaction;
2. fire the batch a chunk at a time, one transaction per chunk (`fire_chunk`): lock the
   chunk's case rows in case-id order; per timer, fire any earlier unfired timer of its
   case first, mark the timer fired only if it is still this node's claim, and fire it;
   then commit the firings, the case changes, audit events and notices together. A timer
   therefore fires exactly once, whoever claimed it and whichever node died in between.
   A chunk that fails is rolled back and fired again one timer per transaction
   (`fire_claimed`), so only the timer at fault fails.

Stopping (SIGTERM, SIGINT) lets the chunk being fired commit, gives back the rest of the
batch and exits. The sweep asks ``app.clock`` for the time, so ``--now`` pins it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection

from duban.engine.model import Case
from duban.engine.service import DueTimer, Engine
from duban.engine.workflow import Workflow
from duban.errors import ConcurrencyError, DubanError, RefusedError, StorageError
from duban.logconfig import get_logger
from duban.service.app import App
from duban.storage import calendar_store, claims
from duban.storage import repository as repo
from duban.storage.database import Database

if TYPE_CHECKING:
    from duban.delivery.deliverer import Deliverer

LOGGER = "duban.scheduler"
log = get_logger(LOGGER)

FIRE_ATTEMPTS = 3  # a timer whose case changed underneath is re-read and fired again this often
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # PostgreSQL serialization failure, deadlock detected


@dataclass(frozen=True)
class Config:
    """How one scheduler process runs (the options of `duban scheduler run`)."""

    node: str  # unique per running process: claims and `scheduler status` name it
    interval: float  # seconds between sweeps; also how late a timer may fire
    batch: int  # timers claimed per claim transaction
    chunk: int  # claimed timers fired per firing transaction (one commit per chunk)
    lease: float  # seconds a claim is reserved for this node; a dead node's claims free up after it
    record: bool = True  # keep a `scheduler_nodes` row (a daemon); `duban tick` is a one-off and does not


def default_node() -> str:
    """HOST-PID: unique per running process, so default-named nodes never share claims."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Fired:
    """One timer fired: what fired, and the lines the engine wrote about it."""

    timer: DueTimer
    lines: list[str]
    taken_over: bool  # an earlier timer of the same case, fired first to keep due order


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
    lines: list[str] = field(default_factory=list)
    keep_lines: bool = True  # False for the daemon's sweeps: nobody reads them, and a catch-up may fire millions
    stopped: bool = False
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"node": self.node, "now": self.now.isoformat(), "claimed": self.claimed, "fired": self.fired,
                "skipped": self.skipped, "failed": self.failed, "released": self.released,
                "stopped": self.stopped, "seconds": round(self.seconds, 3), "lines": self.lines}


# -- one firing transaction ----------------------------------------------------------
def fire_chunk(app: App, engine: Engine, timers: Sequence[DueTimer], node: str, now: datetime) -> list[list[Fired]]:
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
    with app.db.write() as conn:
        cases = claims.lock_cases(conn, [t.case_id for t in timers])
        unfired = claims.unfired_due(conn, list(cases), now)
        # The common case is marked fired in one statement: a case's first timer in the chunk
        # with nothing earlier left unfired. The others are marked one by one as they come.
        alone = _alone(timers, unfired)
        marked = claims.mark_fired(conn, sorted(alone), node, now)
        batch = repo.Batch(conn, app.outbox)  # notices of routed kinds get their deliveries here (SPEC §14)
        changed: set[int] = set()  # cases a firing in this chunk changed: their timers are read again
        done: list[list[Fired]] = []
        for timer in timers:
            case = cases.get(timer.case_id)
            if case is None:
                done.append([])
                continue
            wf = app.workflow_of(conn, case)
            if timer.id in alone:
                fired = [Fired(timer, _fire(conn, batch, engine, wf, case, timer, now), False)] if timer.id in marked else []
            else:
                if timer.case_id in changed:
                    unfired.update(claims.unfired_due(conn, [timer.case_id], now))
                fired = _fire_in_order(conn, batch, engine, wf, case, claims.up_to(unfired[timer.case_id], timer),
                                       timer, node, now)
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


def fire_claimed(app: App, engine: Engine, timer: DueTimer, node: str, now: datetime) -> list[Fired]:
    """Fire one claimed timer in its own transaction (a chunk of one)."""
    return fire_chunk(app, engine, [timer], node, now)[0]


def _fire_in_order(conn: Connection, batch: repo.Batch, engine: Engine, wf: Workflow, case: Case, todo: list[claims.Unfired],
                   timer: DueTimer, node: str, now: datetime) -> list[Fired]:
    """Fire `timer` after the earlier unfired timers of its case (`todo`, ending with it)."""
    last, status, claimed_by = todo[-1] if todo else (None, None, None)
    if last is None or last.id != timer.id or (status, claimed_by) != (claims.CLAIMED, node):
        return []
    fired: list[Fired] = []
    for earlier, _status, _by in todo[:-1]:
        if claims.take_over(conn, earlier.id, now):
            fired.append(Fired(earlier, _fire(conn, batch, engine, wf, case, earlier, now), taken_over=True))
    # False when an earlier timer's step just cancelled this one (its deadline ended).
    if claims.mark_fired(conn, [timer.id], node, now):
        fired.append(Fired(timer, _fire(conn, batch, engine, wf, case, timer, now), taken_over=False))
    return fired


def _fire(conn: Connection, batch: repo.Batch, engine: Engine, wf: Workflow, case: Case, timer: DueTimer,
          now: datetime) -> list[str]:
    # `case` is updated in place (state, version), so several firings can follow in one transaction.
    out = engine.fire_timer(wf, case, timer, now)
    repo.commit_outcome(conn, out, now, batch)
    return out.fired


def _retryable(exc: Exception) -> bool:
    """A conflict worth re-reading the case for: a version clash, or a PostgreSQL deadlock or
    serialization failure (possible only against writers that skip the case lock, e.g. `duban tick`)."""
    if isinstance(exc, ConcurrencyError):
        return True
    orig = getattr(exc.__cause__, "orig", None)
    return isinstance(exc, StorageError) and getattr(orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


# -- the scheduler -------------------------------------------------------------------
class Scheduler:
    """One scheduler node: sweeps once (`run_once`) or every interval until stopped (`run_forever`)."""

    def __init__(self, app: App, config: Config, deliverer: Deliverer | None = None) -> None:
        self.app = app
        self.config = config
        self.deliverer = deliverer  # notices delivered beside the sweep, in a job and thread of their own (SPEC §14)
        self._stop = threading.Event()
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the sweep to stop after the timer it is firing (safe from a signal handler)."""
        self._stop.set()
        if self.deliverer is not None:
            self.deliverer.stop()

    def start(self) -> None:
        """Record the node and give back claims a previous run under this name left behind."""
        if self._started:
            return
        now = self.app.clock.now()
        with self.app.db.write() as conn:
            claims.node_started(conn, self.config.node, socket.gethostname(), os.getpid(), self.config.interval, now)
            recovered = claims.release(conn, self.config.node)
        self._started = True
        log.info("scheduler.started", node=self.config.node, interval=self.config.interval, batch=self.config.batch,
                 lease=self.config.lease, database=self.app.db.display_url, recovered_claims=recovered)

    def _finish(self) -> None:
        with self.app.db.write() as conn:
            released = claims.release(conn, self.config.node)
            claims.node_stopped(conn, self.config.node, self.app.clock.now())
        if self.deliverer is not None:
            self.deliverer.close()
        log.info("scheduler.stopped", node=self.config.node, released_claims=released)

    def run_once(self) -> SweepResult:
        """One sweep (catching up everything due), then stop: `duban scheduler run --once`."""
        with _stop_on_signals(self.stop):
            self.start()
            try:
                result = self.sweep()
                if self.deliverer is not None:
                    self.deliverer.job()  # what the sweep's notices routed somewhere, sent now
                return result
            finally:
                self._finish()

    def run_forever(self) -> None:
        """Sweep now, then every interval, until SIGTERM or SIGINT: `duban scheduler run`."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        with _stop_on_signals(self.stop):
            self.start()
            aps = BackgroundScheduler(
                timezone=self.app.tz,
                # Delivery has a thread of its own: a slow receiver never delays a sweep.
                executors={"default": ThreadPoolExecutor(1), "delivery": ThreadPoolExecutor(1)},
                # Timers are in the database: a missed or overlapping sweep is simply one sweep later.
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            )
            # The first sweep runs at once and catches up whatever fell due while we were down.
            self._job()
            aps.add_job(self._job, "interval", seconds=self.config.interval, id="sweep")
            if self.deliverer is not None:
                aps.add_job(self.deliverer.job, "date", id="deliver-now", executor="delivery")  # at once, in its thread
                aps.add_job(self.deliverer.job, "interval", seconds=self.config.interval, id="deliver", executor="delivery")
            aps.start()
            try:
                self._stop.wait()
            finally:
                aps.shutdown(wait=True)  # the running sweep sees the stop, releases its batch, returns
                self._finish()

    def _job(self) -> None:
        # Runs in APScheduler's worker thread: contextvars do not follow, so sweep() binds its own.
        try:
            self.sweep(keep_lines=False)
        except Exception as exc:  # e.g. the database is down: the next interval retries
            log.error("sweep.failed", node=self.config.node, reason=str(exc), error=type(exc).__name__,
                      traceback=None if isinstance(exc, DubanError) else traceback.format_exc())

    # -- sweeping ----------------------------------------------------------------------
    def sweep(self, keep_lines: bool = True) -> SweepResult:
        """Claim and fire batches until nothing due is left (or a stop is requested); with
        `keep_lines`, the result lists what fired (`--once` and `duban tick` print it)."""
        node = self.config.node
        started = time.perf_counter()
        result = SweepResult(node, self.app.clock.now(), keep_lines=keep_lines)
        with structlog.contextvars.bound_contextvars(node=node):
            engine = self._engine()
            while not self._stop.is_set():
                now = self.app.clock.now()
                with self.app.db.write() as conn:
                    batch = claims.claim(conn, node, now, timedelta(seconds=self.config.lease), self.config.batch)
                if not batch:
                    break
                result.claimed += len(batch)
                self._fire_batch(engine, batch, result)
            result.stopped = self._stop.is_set()
            result.seconds = time.perf_counter() - started
            if self.config.record:
                with self.app.db.write() as conn:
                    claims.node_swept(conn, node, result.now, result.fired)
            log.info("sweep.done", now=result.now.isoformat(), claimed=result.claimed, fired=result.fired,
                     skipped=result.skipped, failed=result.failed, released=result.released,
                     stopped=result.stopped, seconds=round(result.seconds, 3))
        return result

    def _engine(self) -> Engine:
        # Built per sweep, not cached for the process: a calendar imported meanwhile counts at once.
        from duban.workflows import office_rest_day_start

        with self.app.db.read() as conn:
            return Engine(calendar_store.load(conn, office_rest_day_start()), self.app.tz)

    def _fire_batch(self, engine: Engine, batch: list[DueTimer], result: SweepResult) -> None:
        """Fire a claimed batch a chunk (one transaction) at a time; a chunk that fails is rolled
        back and fired again one timer per transaction, so only the timer at fault fails."""
        size = self.config.chunk
        for start in range(0, len(batch), size):
            if self._stop.is_set():
                self._release(batch[start:], result)
                return
            chunk = batch[start : start + size]
            now = self.app.clock.now()
            try:
                fired = fire_chunk(self.app, engine, chunk, self.config.node, now)
            except Exception as exc:
                if len(chunk) > 1:
                    log.info("chunk.one_by_one", timers=len(chunk), reason=str(exc), error=type(exc).__name__)
                self._fire_one_by_one(engine, chunk, result)
                continue
            for timer, timer_fired in zip(chunk, fired, strict=True):
                self._record(timer, timer_fired, now, result)

    def _release(self, timers: list[DueTimer], result: SweepResult) -> None:
        with self.app.db.write() as conn:
            result.released += claims.release(conn, self.config.node, [t.id for t in timers])

    def _fire_one_by_one(self, engine: Engine, timers: list[DueTimer], result: SweepResult) -> None:
        for i, timer in enumerate(timers):
            if self._stop.is_set():
                self._release(timers[i:], result)
                return
            with structlog.contextvars.bound_contextvars(case_id=timer.case_id, timer_id=timer.id):
                self._fire_one(engine, timer, result)

    def _fire_one(self, engine: Engine, timer: DueTimer, result: SweepResult) -> None:
        for attempt in range(1, FIRE_ATTEMPTS + 1):
            now = self.app.clock.now()
            try:
                fired = fire_claimed(self.app, engine, timer, self.config.node, now)
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
                          retry_after_lease_seconds=self.config.lease,
                          traceback=None if isinstance(exc, DubanError) else traceback.format_exc())
                return
            self._record(timer, fired, now, result)
            return

    def _record(self, timer: DueTimer, fired: list[Fired], now: datetime, result: SweepResult) -> None:
        """Count and log one claimed timer's firing (after its transaction committed)."""
        verbose = logging.getLogger(LOGGER).isEnabledFor(logging.INFO)  # a busy sweep skips building the lines
        if not fired:
            result.skipped += 1
            if verbose:
                log.info("timer.skipped", case_id=timer.case_id, timer_id=timer.id,
                         reason="no longer claimed by this node (fired, taken over or cancelled)")
        for f in fired:
            result.fired += 1
            if result.keep_lines:
                result.lines.extend(f.lines)
            if verbose:
                log.info("timer.fired", case_id=f.timer.case_id, timer_id=f.timer.id, deadline=f.timer.deadline,
                         rung=f.timer.rung, due_at=f.timer.due_at.isoformat(),
                         late_seconds=round((now - f.timer.due_at).total_seconds()), taken_over=f.taken_over)


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT ask for a clean stop instead of killing the process mid-transaction."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread (e.g. in-process tests)
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop()  # only set a flag: logging from a signal handler could re-enter a held logging lock

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# -- SQLite: one scheduler per database file -------------------------------------------
def single_node_lock(db: Database, node: str) -> IO[str] | None:
    """On SQLite, hold ``<db>.scheduler.lock`` for the life of the process, or refuse (exit 4).

    SQLite serialises writers, so a second scheduler would add nothing but contention; one
    scheduler process is the supported setup there (SPEC §6.3). The kernel drops the lock
    when the process ends, however it ends, so a killed scheduler never leaves it stale.
    PostgreSQL needs no lock: any number of nodes may run."""
    import fcntl

    path = db.engine.url.database if db.is_sqlite else None
    if not path or path == ":memory:":
        return None
    # named from the resolved file: a symlink to the database (or a path through a linked
    # folder) must find the same lock, not start a second scheduler (SPEC §16)
    real = Path(os.path.realpath(path))
    lock_path = real.with_name(real.name + ".scheduler.lock")
    try:
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the process lifetime
    except OSError as exc:
        raise StorageError(f"cannot create the scheduler lock {lock_path}: {exc}") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RefusedError(
            f"a scheduler is already running against {path} ({holder}; lock {lock_path}): "
            "on SQLite one scheduler process is the supported setup — stop that one first, "
            "or use PostgreSQL (--db postgresql+psycopg://…) to run several"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"node {node}, pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    return handle


# -- status --------------------------------------------------------------------------
def status(app: App, interval: float | None, default_interval: float) -> dict[str, Any]:
    """`duban scheduler status`: pending, due and late timers, claims, last sweep per node (SPEC §6.4).

    A timer is *late* when it has been due for longer than the sweep interval (the one
    given, else the longest any node runs with, else `default_interval`)."""
    now = app.clock.now()
    tz = app.tz
    with app.db.read() as conn:
        if interval is None:
            interval = claims.longest_interval(conn) or default_interval
        raw = claims.status(conn, now, timedelta(seconds=interval))

    def iso(value: datetime | None) -> str | None:
        return value.astimezone(tz).isoformat() if value is not None else None

    def age(value: datetime | None) -> float | None:
        return round((now - value).total_seconds(), 1) if value is not None else None

    return {
        "now": iso(now),
        "interval_seconds": interval,
        "pending": raw["pending"], "claimed": raw["claimed"], "due": raw["due"], "late": raw["late"],
        "next_due_at": iso(raw["next_due_at"]),
        "oldest_late": [
            {"timer_id": t["id"], "case_id": t["case_id"], "deadline": t["deadline"], "rung": t["rung"],
             "due_at": iso(t["due_at"]), "late_seconds": age(t["due_at"]), "status": t["status"],
             "claimed_by": t["claimed_by"], "lease_until": iso(t["lease_until"])}
            for t in raw["oldest_late"]
        ],
        "claims": [
            {"node": c["node"], "timers": c["timers"], "lease_until": iso(c["lease_until"]),
             "expired": c["lease_until"] is not None and c["lease_until"] < now}  # every lease of the node
            for c in raw["claims"]
        ],
        "nodes": [
            {"node": n["node"], "host": n["host"], "pid": n["pid"], "started_at": iso(n["started_at"]),
             "interval_seconds": n["interval_seconds"], "last_sweep_at": iso(n["last_sweep_at"]),
             "since_last_sweep_seconds": age(n["last_sweep_at"]), "last_sweep_fired": n["last_sweep_fired"],
             "fired_total": n["fired_total"], "stopped_at": iso(n["stopped_at"])}
            for n in raw["nodes"]
        ],
    }
