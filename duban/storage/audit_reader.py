"""Reading the audit chain in batches, straight from the driver's cursor (SPEC §7, §11).

`AuditEvents` is what `audit_log.iterate` returns and what exports read. Iterating it gives
each event as a record, exactly as SQLAlchemy Core reads it (the columns' own result
processors, through `duban.storage.sql.result`); `AuditEvents.batches` gives the same events field
by field (`EventBatch`), which is how `audit verify` and the exports get through a million
events: no Row objects, and no per-row Python beyond what the batch needs.

On SQLite only two columns need converting, and they are converted a column at a time
rather than row by row, for the form SQLAlchemy writes:

- ``at`` is stored as ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC). Once a regular expression and
  `datetime.fromisoformat` (the column processor's own parser) have accepted every value of
  the batch, the chain's text (`format_instant`: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``) is the same
  characters with a ``T`` and a ``Z``, made by string operations over the whole column.
- ``data`` is stored as JSON text. The json module's scanner decodes each value; a value is
  taken only when the scanner read all of it — exactly what `json.loads`, the column's
  processor, returns for it.

A batch holding anything else (an instant in another form, JSON with surrounding spaces, a
NULL, a value of another type) is read through the column processors instead, so every
value means what Core would make of it. PostgreSQL reads through a server-side cursor
(memory stays flat whatever the size) and the column processors.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from datetime import datetime
from itertools import repeat
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect

from duban.engine.audit import RECORD_FIELDS, EventBatch, format_instant, scan_json
from duban.storage.sql import columns, fetchmany, processors, result, run, select_sql, streamed
from duban.storage.tables import AUDIT

COLUMNS = columns(AUDIT)
assert COLUMNS == RECORD_FIELDS, "EventBatch takes the columns in table order"
AT, DATA = COLUMNS.index("at"), COLUMNS.index("data")
BATCH = 5000  # rows per fetch: a few MB at most
SELECT = select_sql(AUDIT, COLUMNS)

# what SQLAlchemy's SQLite DATETIME writes for an instant from year 1000 on (one per line)
_STORED_INSTANTS = re.compile(r"(?:[1-9][0-9]{3}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\n)*")
_fromisoformat = datetime.fromisoformat
_first, _second = itemgetter(0), itemgetter(1)
_Pass = TypeVar("_Pass", bound=Generator[Any])


class AuditEvents:
    """Audit events in sequence order (those matching ``where``), read ``size`` at a time.

    Iterate for records (dicts, as Core reads them) or call `batches` for `EventBatch`es;
    each pass runs the query afresh. `close` ends any pass still open (its cursor with it).
    """

    def __init__(self, conn: Connection, where: str = "", params: Sequence[Any] = (), *, size: int | None = None) -> None:
        self.conn = conn
        self.sql = f'{SELECT}{where} ORDER BY "seq"'
        self.params = tuple(params)
        self.size = size or BATCH
        self._passes: list[Generator[Any]] = []

    def __iter__(self) -> Generator[dict[str, Any]]:
        return self._track(self._records())

    def batches(self, *, instants: bool = False) -> Generator[EventBatch]:
        """The events a batch at a time; with ``instants``, each batch also carries them as
        aware datetimes (CSV and XLSX exports show local time)."""
        return self._track(self._batches(instants))

    def close(self) -> None:
        for open_pass in self._passes:
            open_pass.close()
        self._passes = []

    def _track(self, gen: _Pass) -> _Pass:
        self._passes.append(gen)
        return gen

    def _records(self) -> Generator[dict[str, Any]]:
        dialect = self.conn.dialect
        for rows in self._rows():
            for row in rows:
                yield result(dialect, AUDIT, COLUMNS, row)

    def _batches(self, instants: bool) -> Generator[EventBatch]:
        dialect = self.conn.dialect
        procs = processors(dialect, AUDIT, COLUMNS, bind=False)
        fast = dialect.name == "sqlite" and _sqlite_as_stored(dialect, procs)
        for rows in self._rows():
            batch = _from_stored(rows, instants) if fast else None
            if batch is None:
                yield from _processed(rows, procs, instants)
            else:
                yield batch

    def _rows(self) -> Iterator[Sequence[Sequence[Any]]]:
        """The raw rows, a list of driver tuples per fetch."""
        conn, dialect = self.conn, self.conn.dialect
        if dialect.name == "sqlite":
            cursor = run(conn, self.sql, self.params)
            try:
                while rows := fetchmany(cursor, dialect, self.size):
                    yield rows
            finally:
                cursor.close()
            return
        yield from streamed(conn, self.sql, self.params, self.size)  # server-side: memory stays flat


def _sqlite_as_stored(dialect: Dialect, procs: Sequence[Any]) -> bool:
    """Whether the columns read as stored but for ``at`` and ``data``, and ``data`` is
    decoded by plain `json.loads` (no custom deserializer configured on the engine)."""
    others_raw = all(p is None for i, p in enumerate(procs) if i not in (AT, DATA))
    return others_raw and getattr(dialect, "_json_deserializer", None) is None


def _from_stored(rows: Sequence[Sequence[Any]], instants: bool) -> EventBatch | None:
    """The batch, converting ``at`` and ``data`` a column at a time; None when some value is
    not in the form SQLAlchemy writes (the caller then uses the column processors)."""
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    stored_at = columns[AT]
    try:
        chain_at = _chain_instants(stored_at)
        data = _json_documents(columns[DATA])
        aware = list(map(_fromisoformat, ("+00:00\n".join(stored_at) + "+00:00").split("\n"))) if instants else None
    except Exception:  # another form: the processors read it (or raise as Core would)
        return None
    columns[AT], columns[DATA] = chain_at, data
    return _batch(columns, aware)


def _chain_instants(stored: Sequence[Any]) -> list[str]:
    """`format_instant` of each stored instant text: ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC, year
    1000 on) → ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; ValueError/TypeError for any other value."""
    if _STORED_INSTANTS.fullmatch("\n".join(stored) + "\n") is None:
        raise ValueError("not the stored instant form")
    deque(map(_fromisoformat, stored), maxlen=0)  # a real date and time (no 30 February)
    return ("Z\n".join(stored) + "Z").replace(" ", "T").split("\n")


def _json_documents(stored: Sequence[Any]) -> list[Any]:
    """`json.loads` of each stored text; ValueError/TypeError unless the scanner read each whole."""
    found = list(map(scan_json, stored, repeat(0)))  # no value at 0: StopIteration ends the list early
    if len(found) != len(stored) or list(map(_second, found)) != list(map(len, stored)):
        raise ValueError("not one whole JSON document each")
    return list(map(_first, found))


def _processed(rows: Sequence[Sequence[Any]], procs: Sequence[Any], instants: bool) -> Iterator[EventBatch]:
    """The batch through the column processors (None passes through, as in `sql.result`),
    a column at a time.

    If a value cannot be read, the rows are read again one by one: the events before the first
    such row come first, as a batch of their own, and the error is raised after — verification
    stops at an earlier break, as it would reading event by event."""
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    try:
        columns = [c if p is None else [None if v is None else p(v) for v in c] for p, c in zip(procs, columns, strict=True)]
    except Exception:
        read: list[tuple[Any, ...]] = []
        try:
            for row in rows:
                read.append(tuple(v if p is None or v is None else p(v) for p, v in zip(procs, row, strict=True)))
        except Exception:
            if read:
                yield batch_from_rows(read, instants)
            raise
        columns = list(zip(*read, strict=True))
    yield _from_columns(columns, instants)


def batch_from_rows(rows: Sequence[Sequence[Any]], instants: bool = False) -> EventBatch:
    """Rows of processed values in `COLUMNS` order (``at`` an aware datetime) as one batch."""
    return _from_columns(list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS], instants)


def _from_columns(columns: list[Sequence[Any]], instants: bool) -> EventBatch:
    aware = columns[AT]
    columns[AT] = [format_instant(v) if isinstance(v, datetime) else v for v in aware]
    return _batch(columns, aware if instants else None)


def _batch(columns: Sequence[Sequence[Any]], instants: Sequence[Any] | None) -> EventBatch:
    seq, case_id, at, actor, role, action, trigger, from_state, to_state, note, data, prev_hash, hash_ = columns
    return EventBatch(seq, case_id, at, actor, role, action, trigger, from_state, to_state, note, data, prev_hash,
                      hash_, instants)
