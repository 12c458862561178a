"""Verifying the audit chain: whole, from a source of batches, or in slices joined after.

`verify_chain` checks a source that offers batches a batch at a time, and walks a batch
event by event, exactly as it walks plain records, only when something in it does not
verify — to name that event. `SliceJoin` joins checks of consecutive slices (made in
parallel) into the answer the walk gives for the whole chain.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from duban.engine.audit.batches import BatchSource, EventBatch, batch_hashes
from duban.engine.audit.chain import GENESIS, event_hash


@dataclass(frozen=True)
class ChainBreak:
    """The first event that does not verify, and why."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"audit event {self.seq}: {self.reason}"


def _out_of_sequence(seq: int, expected: int) -> ChainBreak:
    return ChainBreak(seq, f"sequence number {seq} where {expected} was expected (an event is missing or out of order)")


def _bad_link(seq: int) -> ChainBreak:
    return ChainBreak(seq, "its previous-hash does not match the event before it (events removed, reordered or edited)")


class _Walk:
    """How far a verification has got: events checked, the last good hash, the next sequence number."""

    def __init__(self, prev_hash: str | None, first_seq: int | None) -> None:
        self.count, self.last, self.expected_seq = 0, prev_hash, first_seq
        # a slice (prev_hash None) starts wherever its first event points
        self.slice = prev_hash is None
        self.broken: ChainBreak | None = None

    def walk(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Check records one by one; stop at the first that does not verify."""
        for record in records:
            seq = int(record["seq"])
            if self.expected_seq is not None and seq != self.expected_seq:
                self.broken = _out_of_sequence(seq, self.expected_seq)
                return
            if record["prev_hash"] != self.last and not (self.count == 0 and self.slice):
                self.broken = _bad_link(seq)
                return
            if event_hash(record) != record["hash"]:
                self.broken = ChainBreak(seq, "its content does not match its hash (the event was edited)")
                return
            self.count, self.last, self.expected_seq = self.count + 1, record["hash"], seq + 1

    def take(self, batch: EventBatch) -> bool:
        """Accept the whole batch if every event in it verifies (the checks `walk` makes, a
        column at a time); False, with nothing taken, if any does not."""
        n = len(batch)
        if n == 0:
            return True
        seqs, prevs, hashes = batch.seq, batch.prev_hash, batch.hash
        try:
            start = int(seqs[0]) if self.expected_seq is None else self.expected_seq
            if list(seqs) != list(range(start, start + n)):
                return False
            if prevs[0] != self.last and not (self.count == 0 and self.slice):
                return False
            if list(prevs[1:]) != list(hashes[:-1]) or batch_hashes(batch) != list(hashes):
                return False
        except Exception:  # a value the fast form cannot take: `walk` meets it in order
            return False
        self.count, self.last, self.expected_seq = self.count + n, hashes[-1], int(seqs[-1]) + 1
        return True


def verify_chain(
    records: Iterable[Mapping[str, Any]] | BatchSource, *, prev_hash: str | None = GENESIS, first_seq: int | None = 1
) -> tuple[int, str | None, ChainBreak | None]:
    """Check records in sequence order.

    Args:
        records: events with the hashed fields plus ``hash``; or a `BatchSource`, checked a
            batch at a time (same result).
        prev_hash: the hash the first record must point at (GENESIS for a whole chain;
            for a slice, the first record's own ``prev_hash`` is taken when this is None).
        first_seq: the sequence number expected first, or None to accept the slice's own.

    Returns:
        (events checked, hash of the last good event, the first break or None).
    """
    state = _Walk(prev_hash, first_seq)
    if not isinstance(records, BatchSource):
        state.walk(records)
        return state.count, state.last, state.broken
    batches = records.batches()
    try:
        with paused_gc():
            for batch in batches:
                if not state.take(batch):  # something in it does not verify: find and name it
                    state.walk(batch.records())
                if state.broken is not None:
                    break
    finally:  # stopped early or failed: the source's cursor closes now
        close = getattr(batches, "close", None)
        if close is not None:
            close()
    return state.count, state.last, state.broken


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused for a bulk pass over batches.

    A pass makes no reference cycles (rows, columns, strings: reference counting frees them
    all), but every batch outlives enough allocations to be promoted to the oldest
    generation, so the collector keeps running full collections over every object the
    process holds (SQLAlchemy's included): about a tenth of `audit verify`'s time over a
    million events. Collection resumes when the pass ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# -- a chain checked in slices ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SliceCheck:
    """What `verify_chain` found over one slice of the chain (``prev_hash=None,
    first_seq=None``: the slice starts wherever its first event points), and that first
    event's sequence number and previous-hash (None for a slice with no events)."""

    count: int
    last: str | None
    broken: ChainBreak | None
    first_seq: int | None
    first_prev_hash: str | None


class SliceJoin:
    """Consecutive slices' checks joined into the answer `verify_chain` gives for the whole
    chain from GENESIS: (events checked before the first break, last good hash, the break).

    A slice's check made every check the whole walk makes but two, on its first event: that
    its sequence number follows the previous slice's last one and that it points at that
    event's hash. `add` makes those two, in the walk's order (sequence number, link, then the
    slice's own findings, which start with the first event's content), so the answer is the
    walk's, break and reason included; a slice with no events leaves the expected number and
    hash as they were."""

    def __init__(self) -> None:
        self.count, self.expected_seq = 0, 1
        self.last: str | None = GENESIS
        self.broken: ChainBreak | None = None

    def add(self, part: SliceCheck) -> bool:
        """Join the next slice; True once the answer is known (a break was found)."""
        if self.broken is not None:
            return True
        if part.first_seq is None:
            return False
        if part.first_seq != self.expected_seq:
            self.broken = _out_of_sequence(part.first_seq, self.expected_seq)
        elif part.first_prev_hash != self.last:
            self.broken = _bad_link(part.first_seq)
        else:
            self.count += part.count
            if part.count:
                self.last, self.expected_seq = part.last, part.first_seq + part.count
            self.broken = part.broken
        return self.broken is not None

    def result(self) -> tuple[int, str | None, ChainBreak | None]:
        return self.count, self.last, self.broken
