"""The scheduler daemon: sweeps for due timers now and every interval (SPEC §6).

Timers live in the `timers` table, never in APScheduler: APScheduler 3.x only drives one
in-process *sweep* job (memory job store, ``coalesce=True``, ``max_instances=1``), so a
restart loses nothing and several processes can share one PostgreSQL database
(LIBRARIES.md §2). What a sweep does — claim due timers, fire them a chunk per
transaction, one by one when a chunk fails — is the service's (`duban.service.timers`);
here are the node's life (start, sweeps, stop), its signals, the one-scheduler lock on
SQLite and `scheduler status`.

Stopping (SIGTERM, SIGINT) lets the chunk being fired commit, gives back the rest of the
batch and exits. The sweep asks ``app.clock`` for the time, so ``--now`` pins it.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from duban.errors import DubanError, RefusedError, StorageError
from duban.logconfig import get_logger
from duban.service.timers import LOGGER, Sweep, SweepResult
from duban.service.timers import default_node as default_node  # the commands name their node with it
from duban.storage import claims
from duban.storage.database import Database

if TYPE_CHECKING:
    from duban.delivery.deliverer import Deliverer
    from duban.service.app import App

log = get_logger(LOGGER)


@dataclass(frozen=True)
class Config:
    """How one scheduler process runs (the options of `duban scheduler run`)."""

    node: str  # unique per running process: claims and `scheduler status` name it
    interval: float  # seconds between sweeps; also how late a timer may fire
    batch: int  # timers claimed per claim transaction
    chunk: int  # claimed timers fired per firing transaction (one commit per chunk)
    lease: float  # seconds a claim is reserved for this node; a dead node's claims free up after it
    record: bool = True  # keep the node's sweeps in `scheduler_nodes` (a daemon); a bench or test run may not


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
        """One sweep through the service (`duban.service.timers.Sweep`), then the node's record
        of it; with `keep_lines`, the result lists what fired (`--once` prints it)."""
        c = self.config
        result = Sweep(self.app, c.node, batch=c.batch, chunk=c.chunk, lease=c.lease,
                       stopping=self._stop.is_set).run(keep_lines)
        if c.record:
            with self.app.db.write() as conn:
                claims.node_swept(conn, c.node, result.now, result.fired)
        return result


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
