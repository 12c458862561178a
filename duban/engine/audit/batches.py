"""Many audit events at once: a batch held field by field (`EventBatch`), and the chain's
canonical bytes and hashes of a whole batch (`canonical_batch`, `batch_hashes`) — the same
bytes `canonical` writes one record at a time (the tests compare them on awkward values).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol, runtime_checkable

from duban.engine.audit.chain import HASHED_FIELDS, format_instant
from duban.engine.audit.columns import JsonRows, json_values


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Consecutive audit events held field by field: each attribute has one value per event.

    ``at`` holds each instant in the chain's text form (`format_instant`, or None), ``data``
    the decoded JSON values; ``instants`` the instants as aware datetimes, when the reader
    was asked for them (CSV and XLSX exports show local time)."""

    seq: Sequence[Any]
    case_id: Sequence[Any]
    at: Sequence[Any]
    actor: Sequence[Any]
    role: Sequence[Any]
    action: Sequence[Any]
    trigger: Sequence[Any]
    from_state: Sequence[Any]
    to_state: Sequence[Any]
    note: Sequence[Any]
    data: Sequence[Any]
    prev_hash: Sequence[Any]
    hash: Sequence[Any]
    instants: Sequence[Any] | None = None

    def __len__(self) -> int:
        return len(self.seq)

    def records(self) -> Iterator[dict[str, Any]]:
        """The events one by one, as records `canonical` and `verify_chain` take."""
        for values in zip(*(getattr(self, f) for f in RECORD_FIELDS), strict=True):
            yield dict(zip(RECORD_FIELDS, values, strict=True))


RECORD_FIELDS = (*HASHED_FIELDS, "hash")
_record_values = itemgetter(*RECORD_FIELDS)


@runtime_checkable
class BatchSource(Protocol):
    """Events that can also be read a batch at a time (the database's reader)."""

    def batches(self) -> Iterator[EventBatch]: ...


def batch_of(records: Sequence[Mapping[str, Any]]) -> EventBatch:
    """Records (with the hashed fields and ``hash``) as one batch; ``at`` may be a datetime."""
    columns: list[Sequence[Any]] = list(zip(*map(_record_values, records), strict=True)) if records else [
        () for _ in RECORD_FIELDS]
    columns[2] = [format_instant(v) if isinstance(v, datetime) else v for v in columns[2]]
    seq, case_id, at, actor, role, action, trigger, from_state, to_state, note, data, prev_hash, hash_ = columns
    return EventBatch(seq, case_id, at, actor, role, action, trigger, from_state, to_state, note, data, prev_hash, hash_)


_sha256 = hashlib.sha256
_hexdigest = type(hashlib.sha256()).hexdigest


_SORTED = sorted(HASHED_FIELDS)
_CANONICAL_ROWS = JsonRows([(k, "json" if k == "data" else "int" if k in ("seq", "case_id") else "text") for k in _SORTED])


def canonical_batch(batch: EventBatch) -> list[bytes]:
    """`canonical` of every event of the batch: the same bytes, written a field at a time."""
    at = batch.at
    if set(map(type, at)) != {str}:  # datetimes as `canonical` writes them
        at = [format_instant(v) if isinstance(v, datetime) else v for v in at]
    columns = {f: getattr(batch, f) for f in HASHED_FIELDS}
    columns["at"], columns["data"] = at, json_values(batch.data)
    return list(map(str.encode, _CANONICAL_ROWS.rows([columns[k] for k in _SORTED])))


def batch_hashes(batch: EventBatch) -> list[str]:
    """`event_hash` of every event of the batch."""
    return list(map(_hexdigest, map(_sha256, canonical_batch(batch))))
