"""The tamper-evident audit chain: canonical form, hashing and verification.

Every event's hash is SHA-256 over a canonical JSON serialisation of its fields and the
previous event's hash, so editing, dropping or reordering any stored event breaks the
chain from that event on. The canonical form is fixed here, in one place, and is also
what an offline verifier of an export recomputes.

`canonical` defines the form one record at a time. `canonical_batch` writes the same bytes
for a whole batch of events held field by field (`EventBatch`), with the per-event Python
work cut to a string format and an encode: each field's JSON is produced a column at a
time by the very encoder `canonical` uses, so the bytes are the same by construction (the
tests compare them with `canonical` on awkward values). `verify_chain` checks a source that
offers such batches a batch at a time, and walks a batch event by event, exactly as it
walks plain records, only when something in it does not verify — to name that event.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any, Protocol, runtime_checkable

GENESIS = "0" * 64
HASHED_FIELDS = (
    "seq", "case_id", "at", "actor", "role", "action", "trigger",
    "from_state", "to_state", "note", "data", "prev_hash",
)
# Keys of an event's data that say how it came, not what it did (SPEC §12: the CLI records
# `via` and the operating-system user on every event it writes); a replay passes them over.
ORIGIN_KEYS = frozenset({"via", "os_user"})


def format_instant(at: datetime) -> str:
    """The one text form of an instant inside the chain: UTC, microseconds, 'Z'.

    That is ``strftime("%Y-%m-%dT%H:%M:%S.%fZ")`` of the UTC instant; `isoformat` writes the
    same text about three times as fast for four-digit years (strftime's ``%Y`` does not pad
    earlier years on every platform, so those keep the strftime path)."""
    utc = at.astimezone(UTC)
    if utc.year < 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# The canonical JSON encoder: what json.dumps(…, sort_keys=True, ensure_ascii=False,
# separators=(",", ":")) builds afresh for each call, built once.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed: the hashed fields as compact, key-sorted UTF-8 JSON."""
    body = {k: record[k] for k in HASHED_FIELDS}
    if isinstance(body["at"], datetime):
        body["at"] = format_instant(body["at"])
    return _CANONICAL(body).encode()


def event_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


# -- many events at once ---------------------------------------------------------------
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


_NULL = {None: "null"}
_SENTINEL = "\x00duban:next\x00"  # its JSON text never occurs inside an encoded value: control characters are escaped
_sha256 = hashlib.sha256
_hexdigest = type(hashlib.sha256()).hexdigest
# json.loads' own scanner (the C one when available): (value, end) of the JSON value at an index
scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def json_texts(values: Sequence[Any]) -> list[str]:
    """Each value of a text field as JSON: a string quoted and escaped as `json.dumps` does it
    (``ensure_ascii=False``), None as ``null``; any other value through the canonical encoder."""
    kinds = set(map(type, values))
    if kinds == {str}:
        return list(map(encode_basestring, values))
    if kinds <= {str, type(None)}:
        return [_NULL[None] if v is None else encode_basestring(v) for v in values]
    return list(map(_CANONICAL, values))


def json_ints(values: Sequence[Any]) -> Sequence[Any]:
    """Each value of a whole-number field, for ``%s``: an int writes itself as JSON does, None
    becomes ``null``; any other value goes through the canonical encoder."""
    kinds = set(map(type, values))
    if kinds <= {int}:
        return values
    if kinds <= {int, type(None)}:
        return list(map(_NULL.get, values, values))
    return list(map(_CANONICAL, values))


def json_values(values: Sequence[Any], encode: Callable[[Any], str] = _CANONICAL, item_separator: str = ",") -> list[str]:
    """Each value as JSON, written by ``encode`` (whose list item separator is
    ``item_separator``) in one call for the whole column.

    The values go out as one list with a sentinel string between each two, and the text is
    cut at the encoded sentinels. A value can only add cuts (a list holding the sentinel
    string), never hide one (no encoded value ends in a separator), so when there is exactly
    one piece per value each piece is that value's own encoding; otherwise every value is
    encoded alone."""
    if not values:
        return []
    spaced = [_SENTINEL] * (2 * len(values) - 1)
    spaced[::2] = values
    pieces = encode(spaced)[1:-1].split(item_separator + encode(_SENTINEL) + item_separator)
    return pieces if len(pieces) == len(values) else list(map(encode, values))


def _plain(values: Sequence[Any]) -> bool:
    """Every value a str that JSON writes as itself between quotes: no quote, no backslash, no
    control character (`isprintable` also says no to a few other characters, such as U+3000;
    those columns are simply encoded).

    An ASCII column (hashes, roles, actions …) is checked as bytes: deleting every printable
    character but the quote and the backslash must leave nothing — the same test, several
    times faster than `str.isprintable` over 128 hash characters a row."""
    if set(map(type, values)) != {str}:
        return False
    joined = "".join(values)
    if joined.isascii():
        return not joined.encode("ascii").translate(None, _PLAIN_ASCII)
    return joined.isprintable() and '"' not in joined and "\\" not in joined


_PLAIN_ASCII = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')  # printable ASCII less quote and backslash


class JsonRows:
    """JSON objects of fixed keys, written a batch at a time from columns of values.

    Each field is ``text`` (str or None), ``int`` (whole number or None) or ``json`` (the
    column already encoded, e.g. by `json_values`). A text column with nothing to escape goes
    into the object between quotes as it is; any other column is encoded first (`json_texts`,
    `json_ints`), so every value is written exactly as `json.dumps` writes it. The object is
    then one ``%`` format per row."""

    def __init__(self, fields: Sequence[tuple[str, str]], end: str = "") -> None:
        self.fields = tuple(fields)
        self.end = end
        self._templates: dict[tuple[bool, ...], str] = {}

    def rows(self, columns: Sequence[Sequence[Any]]) -> Iterator[str]:
        """One JSON text per row; ``columns`` in the order of the fields."""
        quoted: list[bool] = []
        ready: list[Sequence[Any]] = []
        for (_, kind), values in zip(self.fields, columns, strict=True):
            plain = kind == "text" and _plain(values)
            quoted.append(plain)
            ready.append(values if plain or kind == "json" else json_texts(values) if kind == "text" else json_ints(values))
        key = tuple(quoted)
        template = self._templates.get(key)
        if template is None:
            slots = (f'"{name}":' + ('"%s"' if q else "%s") for (name, _), q in zip(self.fields, key, strict=True))
            template = self._templates[key] = "{" + ",".join(slots) + "}" + self.end
        return map(template.__mod__, zip(*ready, strict=True))


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


# -- verification ---------------------------------------------------------------------
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
