"""A user's sign-in secrets, one `credentials` row per user (made on first need), and
the one way a high-entropy secret (a session id, an API token) is stored: its SHA-256.

A session id or a token is 256 random bits, so a fast hash is enough to make the stored
value useless to a reader of the database; passwords, which people choose, get argon2id
(`duban.access.passwords`) instead.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, insert, select, update

from duban.errors import NotFoundError
from duban.storage import repository as repo
from duban.storage.tables import CREDENTIALS


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def user(conn: Connection, name: str) -> dict[str, Any]:
    """The directory row of `name` (already normalised), or NotFoundError (exit 3)."""
    found = repo.get_user(conn, name)
    if found is None:
        raise NotFoundError(f"用户“{name}”不在名录中（查看：duban user list）")
    return found


def get(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(CREDENTIALS).where(CREDENTIALS.c.user_name == name)).first()
    return dict(row._mapping) if row else None


def put(conn: Connection, name: str, **values: Any) -> None:
    """Set columns of the user's credentials row, making the row if it is not there yet."""
    done = conn.execute(update(CREDENTIALS).where(CREDENTIALS.c.user_name == name).values(**values))
    if done.rowcount == 0:
        conn.execute(insert(CREDENTIALS).values(user_name=name, **values))
