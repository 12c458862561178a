"""5 failed sign-ins for one user within 15 minutes lock that user for 15 minutes (SPEC §12).

While locked, every sign-in fails, the right password too, and is not counted again (so
a lock ends 15 minutes after it began, whatever is tried meanwhile). The failures that
made a lock are cleared with it, and a successful sign-in clears the count.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select

from duban.access import credentials
from duban.storage.tables import SIGN_IN_FAILURES

LIMIT = 5
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)


def locked_until(cred: dict[str, object] | None, now: datetime) -> datetime | None:
    """When the lock on this credentials row ends, if it is locked now."""
    until = cred.get("locked_until") if cred else None
    return until if isinstance(until, datetime) and until > now else None


def fail(conn: Connection, name: str, now: datetime) -> datetime | None:
    """Count a failure; if it is the LIMIT-th within WINDOW, lock the user: when it ends."""
    conn.execute(delete(SIGN_IN_FAILURES).where(SIGN_IN_FAILURES.c.user_name == name,
                                                SIGN_IN_FAILURES.c.at <= now - WINDOW))  # no longer count
    conn.execute(insert(SIGN_IN_FAILURES).values(user_name=name, at=now))
    recent = conn.execute(select(func.count()).select_from(SIGN_IN_FAILURES).where(
        SIGN_IN_FAILURES.c.user_name == name, SIGN_IN_FAILURES.c.at > now - WINDOW)).scalar_one()
    if recent < LIMIT:
        return None
    until = now + LOCK
    credentials.put(conn, name, locked_until=until)
    clear(conn, name)
    return until


def clear(conn: Connection, name: str) -> None:
    conn.execute(delete(SIGN_IN_FAILURES).where(SIGN_IN_FAILURES.c.user_name == name))
