"""关注 (SPEC §13): which office user watches which case (the `watches` table).

Written only by a committed `watch` / `unwatch` step (`repository.commit_outcome`), whose
audit event is the record; `audit verify --state` rebuilds this table from those events.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from duban.storage.tables import WATCHES


def apply(conn: Connection, case_id: int, user: str, watching: bool, now: datetime) -> None:
    conn.execute(delete(WATCHES).where(WATCHES.c.case_id == case_id, WATCHES.c.user_name == user))
    if watching:
        conn.execute(insert(WATCHES).values(case_id=case_id, user_name=user, since=now))


def watching(conn: Connection, case_id: int, user: str) -> bool:
    found = conn.execute(select(WATCHES.c.case_id).where(WATCHES.c.case_id == case_id, WATCHES.c.user_name == user))
    return found.first() is not None


def watched_by(conn: Connection, user: str) -> list[int]:
    """The cases a user watches, most recently watched first."""
    rows = conn.execute(select(WATCHES.c.case_id).where(WATCHES.c.user_name == user)
                        .order_by(WATCHES.c.since.desc(), WATCHES.c.case_id.desc()))
    return [r[0] for r in rows]


def watchers(conn: Connection, case_id: int) -> set[str]:
    return {r[0] for r in conn.execute(select(WATCHES.c.user_name).where(WATCHES.c.case_id == case_id))}
