"""Appending to and reading the audit chain in the database.

All events form one chain. Appending reads the chain head and writes the next links
inside the caller's transaction, so the chain must have one writer at a time: SQLite's
``BEGIN IMMEDIATE`` already gives that; on PostgreSQL a transaction-scoped advisory lock
serialises appends (held from the append to the commit — the cost of a single verifiable
chain under concurrent writers, see README "Scaling out").
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sqlalchemy import Connection, insert, select, text

from duban.engine.audit import GENESIS, event_hash
from duban.engine.model import Event
from duban.storage.tables import AUDIT

CHAIN_LOCK = 0x64756261  # "duba": the advisory-lock key of the audit chain head


def append(conn: Connection, case_id: int | None, events: list[Event]) -> list[dict[str, Any]]:
    """Append events (in order) to the chain; returns the stored records."""
    if not events:
        return []
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK})
    head = conn.execute(select(AUDIT.c.seq, AUDIT.c.hash).order_by(AUDIT.c.seq.desc()).limit(1)).first()
    seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
    rows = []
    for e in events:
        seq += 1
        record = {
            "seq": seq, "case_id": case_id, "at": e.at, "actor": e.actor, "role": e.role,
            "action": e.action, "trigger": e.trigger, "from_state": e.from_state,
            "to_state": e.to_state, "note": e.note, "data": e.data, "prev_hash": prev,
        }
        record["hash"] = prev = event_hash(record)
        rows.append(record)
    conn.execute(insert(AUDIT), rows)
    return rows


COLUMNS = [c.name for c in AUDIT.columns]


def iterate(conn: Connection, *, case_id: int | None = None, batch: int = 5000) -> Generator[dict[str, Any]]:
    """Events in sequence order, streamed in batches (bounded memory whatever the size)."""
    stmt = select(AUDIT).order_by(AUDIT.c.seq)
    if case_id is not None:
        stmt = stmt.where(AUDIT.c.case_id == case_id)
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
    try:
        for row in result:
            yield dict(row._mapping)
    finally:
        result.close()


def decisions(conn: Connection, case_id: int, trigger: str) -> list[dict[str, Any]]:
    """The events of one case where `trigger` was fired (e.g. accountability decisions)."""
    stmt = select(AUDIT).where(AUDIT.c.case_id == case_id, AUDIT.c.trigger == trigger).order_by(AUDIT.c.seq)
    return [dict(r._mapping) for r in conn.execute(stmt)]
