"""Checkpoints, exports and the events' hashes in the database (SPEC §15).

The audit chain's Merkle tree is never stored whole: each checkpoint row keeps the tree's
frontier at its size (at most log2(size) hashes), so the next checkpoint reads only the
``seq, prev_hash, hash`` of the events since, `BATCH` at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from duban.storage.tables import AUDIT, AUDIT_EXPORTS, CHECKPOINTS

BATCH = 10_000


def latest(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def every(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.id)).mappings()]


def add(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(CHECKPOINTS).values(**values).returning(CHECKPOINTS.c.id)).scalar_one())


def record_export(conn: Connection, at: datetime, fmt: str, rows: int, head_seq: int | None) -> None:
    conn.execute(insert(AUDIT_EXPORTS).values(exported_at=at, format=fmt, rows=rows, head_seq=head_seq))


def exports_since(conn: Connection, size: int) -> int:
    """Exports whose chain head lies beyond ``size`` events (not yet under a checkpoint)."""
    return int(conn.execute(select(func.count()).select_from(AUDIT_EXPORTS)
                            .where(AUDIT_EXPORTS.c.head_seq > size)).scalar_one())


def head(conn: Connection) -> int:
    """The last event's sequence number (0 for an empty log)."""
    return int(conn.execute(select(func.coalesce(func.max(AUDIT.c.seq), 0))).scalar_one())


def hashes(conn: Connection, after: int, upto: int | None = None) -> Iterator[list[tuple[int, str, str]]]:
    """(seq, prev_hash, hash) of the events after ``after`` (up to ``upto``), a batch at a time."""
    low = after
    while True:
        stmt = select(AUDIT.c.seq, AUDIT.c.prev_hash, AUDIT.c.hash).where(AUDIT.c.seq > low)
        if upto is not None:
            stmt = stmt.where(AUDIT.c.seq <= upto)
        rows = [tuple(r) for r in conn.execute(stmt.order_by(AUDIT.c.seq).limit(BATCH))]
        if not rows:
            return
        yield rows
        low = rows[-1][0]
