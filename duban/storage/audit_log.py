"""Appending to and reading the audit chain in the database.

All events form one chain. Appending reads the chain head and writes the next links
inside the caller's transaction, so the chain must have one writer at a time: SQLite's
``BEGIN IMMEDIATE`` already gives that; on PostgreSQL a transaction-scoped advisory lock
serialises appends (held from the append to the commit — the cost of a single verifiable
chain under concurrent writers, see README "Scaling out").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from duban.engine.audit import GENESIS, event_hash
from duban.engine.model import Event
from duban.storage.database import ORIGIN
from duban.storage.sql import bind, columns, execute, fetchone, insert_sql, rows_by_case, select_sql
from duban.storage.tables import AUDIT

if TYPE_CHECKING:
    from duban.storage.audit_reader import AuditEvents

CHAIN_LOCK = 0x64756261  # "duba": the advisory-lock key of the audit chain head


COLUMNS = columns(AUDIT)
_INSERT = insert_sql(AUDIT, COLUMNS)
_HEAD = select_sql(AUDIT, ("seq", "hash"), ' ORDER BY "seq" DESC LIMIT 1')


class Chain:
    """Audit events of one transaction, appended to the chain together by `flush`.

    `add` only queues events; `flush` (which the caller runs just before committing) takes
    the chain lock on PostgreSQL, reads the chain head once, hashes the queued events onto
    it in the order they were added and inserts them in one statement. The lock is thus
    held only from the flush to the commit, not while the transaction's steps are worked
    out, so other writers overlap all of that (a scheduler chunk fires many timers this way)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._queued: list[tuple[int | None, Event]] = []

    def add(self, case_id: int | None, events: list[Event]) -> None:
        """Queue events (in order) for the next flush."""
        self._queued.extend((case_id, e) for e in events)

    def flush(self) -> None:
        """Append the queued events to the chain."""
        if not self._queued:
            return
        if self.conn.dialect.name == "postgresql":
            fetchone(self.conn, "SELECT pg_advisory_xact_lock(?)", (CHAIN_LOCK,))
        head = fetchone(self.conn, _HEAD)
        seq, prev = (head[0], head[1]) if head else (0, GENESIS)
        origin = self.conn.info.get(ORIGIN)  # `Database.origin`: how these events came (the CLI's)
        rows = []
        for case_id, e in self._queued:
            seq += 1
            record = {
                "seq": seq, "case_id": case_id, "at": e.at, "actor": e.actor, "role": e.role,
                "action": e.action, "trigger": e.trigger, "from_state": e.from_state,
                "to_state": e.to_state, "note": e.note, "data": {**e.data, **origin} if origin else e.data,
                "prev_hash": prev,
            }
            record["hash"] = prev = event_hash(record)
            rows.append(record)
        execute(self.conn, _INSERT, many=[bind(self.conn.dialect, AUDIT, COLUMNS, [r[c] for c in COLUMNS])
                                          for r in rows])
        self._queued = []


def iterate(conn: Connection, *, case_id: int | None = None, batch: int = 5000) -> AuditEvents:
    """Events in sequence order, streamed in batches (bounded memory whatever the size).

    Iterating gives each event as a record; `AuditEvents.batches` gives them field by field,
    which is how `verify_chain` checks a whole chain fast."""
    from duban.storage.audit_reader import AuditEvents

    if case_id is None:
        return AuditEvents(conn, size=batch)
    return AuditEvents(conn, ' WHERE "case_id" = ?', (case_id,), size=batch)


_DECISIONS = select_sql(AUDIT, COLUMNS, ' WHERE "case_id" IN ({}) AND "trigger" = ? ORDER BY "seq"')


def decisions(conn: Connection, case_ids: Sequence[int], trigger: str) -> dict[int, list[dict[str, Any]]]:
    """Per case, the events where `trigger` was fired (e.g. accountability decisions)."""
    return rows_by_case(conn, _DECISIONS, AUDIT, COLUMNS, case_ids, (trigger,))
