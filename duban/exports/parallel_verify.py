"""`audit verify` over several processes: the chain cut into ranges of sequence numbers,
each range checked in a worker process of its own, the ranges' findings joined in order.

Each event's hash depends only on its own fields and its stored previous-hash, so a range
verifies on its own as a slice (`verify_chain` with ``prev_hash=None, first_seq=None``).
What a slice cannot see — that its first event follows the previous range's last one and
points at its hash — `SliceJoin` checks while joining, in the order the sequential walk
checks it; so the answer is exactly the sequential one (events checked before the first
break, the last good hash, the break and its reason), wherever the break lies.

The ranges cover sequence numbers up to the chain's last at the start (the log is
append-only): events appended while the check runs are not checked, as a sequential check
inside one read transaction does not see them either. The first range has no lower bound,
so a stored sequence number below 1 is met where the sequential walk meets it.

Each worker opens its own connection (`Database` from the URL) for each range and closes
it after; nothing of the parent's is used across the fork. A worker that fails (a value
the reader cannot read, the database gone) makes the whole check run again sequentially
in this process, which then gives the sequential answer or error — unless an earlier range
already holds a break, which is then the answer, as it would be sequentially.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing
from typing import Any, TypeVar

from duban.engine.audit import BatchSource, ChainBreak, EventBatch, SliceCheck, SliceJoin, verify_chain
from duban.engine.merkle import Range, event_leaves
from duban.storage.audit_reader import AuditEvents
from duban.storage.database import Database

Verified = tuple[int, str | None, ChainBreak | None]
T = TypeVar("T")

PARALLEL_FROM = 50_000  # events: below this, starting the workers costs more than they save
RANGES_PER_JOB = 4  # ranges per worker: a worker slowed by something else hands its share on
MIN_RANGE = 20_000  # events per range at least (each range opens a connection and a query)
MAX_JOBS = 8


def default_jobs() -> int:
    """One worker per CPU this process may run on (at most `MAX_JOBS`)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_JOBS))


def start_method() -> str:
    """How worker processes start.

    ``fork`` when this process runs a single thread on a platform whose default it is
    (Linux): a worker starts in milliseconds with duban already imported. A process with
    other threads (the CLI called from a threaded host) must not fork: another thread may
    hold a lock (logging's, a connection pool's) that the child would inherit held for
    ever. Then ``forkserver``: a clean server process, started once with this module
    imported, forks the workers; ``spawn`` where neither is available. Measured here (2
    cores, SQLite, 2 workers, best of alternating runs): 50,000 events fork 0.20 s,
    forkserver 0.42 s, spawn 0.46 s (sequential 0.37 s); 1,000,000 events 4.3 s with each
    (sequential about 10 s) — the server's start-up (~0.25 s) is what fork saves."""
    methods = multiprocessing.get_all_start_methods()
    if methods[0] == "fork" and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def ranges(last_seq: int, jobs: int, min_range: int = MIN_RANGE) -> list[tuple[int | None, int]]:
    """(lowest, highest) sequence numbers of each range, in order, about equal in size: up to
    `RANGES_PER_JOB` per job, none shorter than ``min_range``. The first range has no lowest
    (None), the last ends at ``last_seq``."""
    count = max(1, min(jobs * RANGES_PER_JOB, last_seq // max(1, min_range)))
    cuts = [1 + last_seq * i // count for i in range(count + 1)]
    return [(None if i == 0 else cuts[i], cuts[i + 1] - 1) for i in range(count)]


def verify_database(db: Database, jobs: int | None = None, *, parallel_from: int = PARALLEL_FROM,
                    min_range: int = MIN_RANGE, method: str | None = None) -> Verified:
    """`verify_chain` of the whole chain in ``db``, over ``jobs`` worker processes (default
    `default_jobs`) started by ``method`` (default `start_method`), each checking `ranges`
    of at least ``min_range`` events; sequentially in this process for ``jobs`` 1 or a chain
    shorter than ``parallel_from`` events."""
    found = verify_with_tree(db, jobs, None, parallel_from=parallel_from, min_range=min_range, method=method)
    return found.count, found.head, found.broken


class TreeVerified:
    """The chain's check, and — when asked for sizes — the Merkle roots of the log's first
    ``size`` events for each (`roots`; a size past the end of the log has none) and of the
    whole log (`root`). The roots mean something only when the chain verified (``broken`` None)."""

    def __init__(self, count: int, head: str | None, broken: ChainBreak | None, roots: dict[int, bytes],
                 root: bytes | None) -> None:
        self.count, self.head, self.broken, self.roots, self.root = count, head, broken, roots, root


def verify_with_tree(db: Database, jobs: int | None, sizes: list[int] | None, *, parallel_from: int = PARALLEL_FROM,
                     min_range: int = MIN_RANGE, method: str | None = None) -> TreeVerified:
    """`verify_database`, with the Merkle tree of the events computed in the same pass (the
    leaf hashes from each batch's ``hash`` column) when ``sizes`` is given: each worker
    returns the compact range of its events (and a copy at each size inside it), joined in
    order here into the roots."""
    jobs = default_jobs() if jobs is None else jobs
    if jobs > 1:
        with db.read() as conn:
            cursor = conn.exec_driver_sql("SELECT max(seq) FROM audit_events")
            last_seq = cursor.scalar()
        if isinstance(last_seq, int) and last_seq >= max(parallel_from, 2):
            found = _in_workers(db.url, ranges(last_seq, jobs, min_range), jobs, method or start_method(), sizes)
            if found is not None:
                return found
    return sequential_tree(db, sizes)


def sequential(db: Database) -> Verified:
    found = sequential_tree(db, None)
    return found.count, found.head, found.broken


def sequential_tree(db: Database, sizes: list[int] | None) -> TreeVerified:
    with db.read() as conn, closing(AuditEvents(conn)) as events:
        # closing(): a break stops reading early; the server-side cursor must still close
        if sizes is None:
            return TreeVerified(*verify_chain(events), {}, None)
        tap = TreeTap(events, 0, sizes)
        count, head, broken = verify_chain(tap)
        roots = {size: r.root() for size, r in tap.snapshots}
        return TreeVerified(count, head, broken, roots, tap.tree.root() if tap.whole else None)


class TreeTap:
    """A batch source that passes its batches on and feeds each batch's event hashes into a
    compact range starting at leaf ``begin``, copying it when it reaches each of ``sizes``.
    An event hash that is not hex (an edited row: the chain check names it) stops the tree."""

    def __init__(self, source: BatchSource, begin: int, sizes: list[int]) -> None:
        self.source = source
        self.tree = Range(begin)
        self.todo = sorted({s for s in sizes if s > begin}, reverse=True)
        self.snapshots: list[tuple[int, Range]] = [(begin, Range(begin))] if begin in sizes else []
        self.whole = True

    def batches(self) -> Iterator[EventBatch]:
        for batch in self.source.batches():
            if self.whole:
                self._feed(batch.hash)
            yield batch

    def _feed(self, hashes: Sequence[Any]) -> None:
        try:
            leaves = event_leaves(hashes)
        except (TypeError, ValueError):
            self.whole = False
            return
        tree, todo, at = self.tree, self.todo, 0
        while todo and todo[-1] <= tree.end + len(leaves) - at:
            size = todo.pop()
            take = size - tree.end
            tree.extend(leaves[at:at + take])
            at += take
            self.snapshots.append((size, tree.copy()))
        tree.extend(leaves[at:])


def _in_workers(url: str, parts: list[tuple[int | None, int]], jobs: int, method: str,
                sizes: list[int] | None = None) -> TreeVerified | None:
    """The joined answer; None when a worker failed before a break was known."""
    with worker_pool(min(jobs, len(parts)), method, __name__) as pool:
        pending = submit_all(pool, check_range, [(url, low, high, sizes) for low, high in parts])
        try:
            join = SliceJoin()
            tree: Range | None = Range(0)
            roots: dict[int, bytes] = {}
            for waiting in pending:
                try:
                    part, ranged = waiting.result()
                except Exception:
                    return None
                if join.add(part):
                    break
                tree = _join_tree(tree, ranged, roots)
            count, head, broken = join.result()
            return TreeVerified(count, head, broken, roots, tree.root() if tree is not None and sizes is not None else None)
        finally:  # after a break the later ranges are not needed: those not started never start
            pool.shutdown(wait=True, cancel_futures=True)


def _join_tree(tree: Range | None, ranged: tuple[list[tuple[int, Range]], Range] | None,
               roots: dict[int, bytes]) -> Range | None:
    """The tree so far with a worker's range joined on; the roots at the sizes inside it noted."""
    if tree is None or ranged is None:
        return None
    snapshots, whole = ranged
    try:
        for size, part in snapshots:
            upto = tree.copy()
            upto.join(part)
            roots[size] = upto.root()
        tree.join(whole)
    except ValueError:  # the ranges do not meet (events missing): the chain check has said so
        return None
    return tree


def worker_pool(workers: int, method: str, preload: str) -> ProcessPoolExecutor:
    """Worker processes started by ``method``; a forkserver imports module ``preload`` once, up front.

    `ProcessPoolExecutor` rather than `multiprocessing.Pool`: a worker that dies (killed,
    or failing to start) breaks the executor and fails the tasks it had, where a pool
    would start another worker and leave the task waiting forever."""
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([preload])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def submit_all(pool: ProcessPoolExecutor, task: Callable[..., T], calls: list[tuple[Any, ...]]) -> list[Future[T]]:
    """``task(*args)`` for each of ``calls``, in order. Forked workers are started at the first
    submit and inherit every object of this process: frozen, none is theirs to collect (a
    collected connection would close the file under SQLite's locks); thawed once they run."""
    gc.freeze()
    try:
        return [pool.submit(task, *args) for args in calls]
    finally:
        gc.unfreeze()


Ranged = tuple[list[tuple[int, Range]], Range] | None  # a worker's (copies at sizes, whole range) of the tree


def check_range(url: str, low: int | None, high: int, sizes: list[int] | None = None) -> tuple[SliceCheck, Ranged]:
    """The events with sequence numbers from ``low`` (None: any) to ``high``, checked as a
    slice, on a connection of this process's own; with ``sizes``, their compact Merkle range
    too (leaves from ``low - 1``)."""
    db = Database(url)
    try:
        where, params = (" WHERE seq <= ?", (high,)) if low is None else (" WHERE seq >= ? AND seq <= ?", (low, high))
        with db.read() as conn, closing(AuditEvents(conn, where, params)) as events:
            tap = None if sizes is None else TreeTap(events, 0 if low is None else low - 1, sizes)
            first = _First(events.batches if tap is None else tap.batches)
            count, last, broken = verify_chain(first, prev_hash=None, first_seq=None)
            ranged = None if tap is None or not tap.whole else (tap.snapshots, tap.tree)
            return SliceCheck(count, last, broken, first.seq, first.prev_hash), ranged
    finally:
        db.dispose()


class _First:
    """A batch source that notes the sequence number and previous-hash of its first event."""

    def __init__(self, batches: Callable[[], Iterator[EventBatch]]) -> None:
        self._batches = batches
        self.seq: int | None = None
        self.prev_hash: str | None = None

    def batches(self) -> Iterator[EventBatch]:
        for batch in self._batches():
            if self.seq is None and len(batch):
                self.seq, self.prev_hash = int(batch.seq[0]), batch.prev_hash[0]
            yield batch
