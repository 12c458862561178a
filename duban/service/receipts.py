"""Read receipts (SPEC §13, §14: 标为已读): who read a notice and when, in `notice_reads`.

A receipt is a row, not an audit event: reading changes no case, and the receipt is the
recipient's own record (the audit chain already holds that and when the notice was sent).
A person may mark only a notice addressed to them — to their unit, or to their role.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, select

from duban.errors import NotFoundError
from duban.storage.tables import NOTICE_READS, NOTICES

if TYPE_CHECKING:
    from duban.service.app import App


def recipient_of(role: str, unit: str | None) -> str:
    """Whom a user's notices are addressed to: the unit for a unit user, else the role."""
    return unit if role == "unit" and unit else role


def unread_count(app: App, reader: str, recipient: str) -> int:
    """How many notices to `recipient` (`recipient_of`) `reader` has not marked read."""
    read = select(NOTICE_READS.c.notice_id).where(NOTICE_READS.c.notice_id == NOTICES.c.id,
                                                  NOTICE_READS.c.reader == reader)
    with app.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(NOTICES).where(
            NOTICES.c.recipient == recipient, ~read.exists())).scalar_one())


def reads(conn: Connection, notice_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Each notice's receipts, oldest first."""
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in notice_ids}
    for start in range(0, len(notice_ids), 500):
        chunk = list(notice_ids[start:start + 500])
        for r in conn.execute(select(NOTICE_READS).where(NOTICE_READS.c.notice_id.in_(chunk))
                              .order_by(NOTICE_READS.c.read_at)):
            found[r.notice_id].append({"reader": r.reader, "read_at": r.read_at})
    return found


def mark_read(app: App, notice_id: int, reader: str, role: str, unit: str | None) -> dict[str, Any]:
    """Record that `reader` read the notice (once: a second mark keeps the first time)."""
    now = app.clock.now()
    with app.db.write() as conn:
        row = conn.execute(select(NOTICES.c.id, NOTICES.c.recipient).where(NOTICES.c.id == notice_id)).first()
        if row is None or row.recipient != recipient_of(role, unit):
            raise NotFoundError(f"no notice {notice_id} to you")
        done = conn.execute(select(NOTICE_READS.c.read_at).where(
            NOTICE_READS.c.notice_id == notice_id, NOTICE_READS.c.reader == reader)).first()
        at = done.read_at if done else now
        if done is None:
            conn.execute(insert(NOTICE_READS).values(notice_id=notice_id, reader=reader, read_at=now))
    return {"id": notice_id, "reader": reader, "read_at": at.astimezone(app.tz).isoformat(), "read": True}
