"""Board sessions, server-side (SPEC §12): a row per sign-in, revocable, with limits.

The cookie carries a random id (`secrets.token_urlsafe`, 256 bits) made anew at every
sign-in, so an id planted before sign-in is worth nothing after it; the row stores only its
SHA-256, so reading the database gives no one a session. A session ends when its user signs
out, after 30 minutes without a request (idle) or 12 hours after sign-in (absolute), and
when its user is disabled or gets a new password. Rows are numbered: audit events name a
session by that number, never by its id.

The CSRF token of a session is an HMAC of the session id: it changes with the session,
needs no row and no server key, and cannot be worked out from the database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from duban.access.credentials import digest
from duban.storage.tables import SESSIONS

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
# The idle clock is recorded at most once a minute: every page and cookie API call asks for
# its session, and writing the row each time made each of them a write transaction (on
# SQLite, one writer for the whole office). So a session ends 29 to 30 minutes after its last
# request — up to a minute early, never late.
TOUCH_STEP = timedelta(minutes=1)
_CSRF = b"duban-csrf-v1"


@dataclass(frozen=True)
class NewSession:
    """What sign-in gives the board: the cookie's value (shown once, never stored) and the
    session's number, CSRF token and absolute end."""

    id: str
    number: int
    csrf: str
    expires_at: datetime

    def __repr__(self) -> str:  # a session id must not reach a log line through a repr
        return f"NewSession(number={self.number}, expires_at={self.expires_at.isoformat()})"


def start(conn: Connection, user: str, now: datetime) -> NewSession:
    sid = secrets.token_urlsafe(32)
    number = int(conn.execute(insert(SESSIONS).values(
        id_hash=digest(sid), user_name=user, created_at=now, last_seen_at=now, expires_at=now + ABSOLUTE,
    ).returning(SESSIONS.c.id)).scalar_one())
    return NewSession(sid, number, csrf_token(sid), now + ABSOLUTE)


_BY_ID = select(SESSIONS).where(SESSIONS.c.id_hash == bindparam("id_hash"))  # built once: every page asks


def _row(conn: Connection, sid: str) -> dict[str, Any] | None:
    row = conn.execute(_BY_ID, {"id_hash": digest(sid)}).first()
    return dict(row._mapping) if row else None


def fresh(conn: Connection, sid: str, now: datetime) -> dict[str, Any] | None:
    """The live session with this id when nothing about it needs writing (within its limits,
    its idle clock recorded less than TOUCH_STEP ago); None otherwise (then `touch` decides)."""
    row = _row(conn, sid)
    if row is None or row["ended_at"] is not None or now >= row["expires_at"]:
        return None
    return row if abs(now - row["last_seen_at"]) < TOUCH_STEP else None


def touch(conn: Connection, sid: str, now: datetime) -> dict[str, Any] | None:
    """The live session with this id, its idle clock restarted; None when there is none
    (unknown, ended, or past a limit — which ends it now)."""
    row = _row(conn, sid)
    if row is None or row["ended_at"] is not None:
        return None
    over = "expired" if now >= row["expires_at"] else "idle" if now - row["last_seen_at"] > IDLE else None
    if over is not None:
        _end(conn, [row["id"]], now, over)
        return None
    conn.execute(update(SESSIONS).where(SESSIONS.c.id == row["id"]).values(last_seen_at=now))
    return {**row, "last_seen_at": now}


def end(conn: Connection, sid: str, now: datetime, reason: str = "signed_out") -> dict[str, Any] | None:
    """End the live session with this id (sign-out); the ended row, or None if none was live."""
    row = _row(conn, sid)
    if row is None or row["ended_at"] is not None:
        return None
    _end(conn, [row["id"]], now, reason)
    return row


def end_all(conn: Connection, user: str, now: datetime, reason: str) -> int:
    """End every live session of a user (disabled, new password); how many there were."""
    ids = list(conn.execute(select(SESSIONS.c.id).where(SESSIONS.c.user_name == user,
                                                         SESSIONS.c.ended_at.is_(None))).scalars())
    _end(conn, ids, now, reason)
    return len(ids)


def _end(conn: Connection, ids: list[int], now: datetime, reason: str) -> None:
    if ids:
        conn.execute(update(SESSIONS).where(SESSIONS.c.id.in_(ids)).values(ended_at=now, end_reason=reason))


def csrf_token(sid: str) -> str:
    return hmac.new(sid.encode(), _CSRF, hashlib.sha256).hexdigest()


def csrf_ok(sid: str, token: str | None) -> bool:
    """Whether a form's or header's token is this session's (compared in constant time)."""
    # bytes: compare_digest refuses non-ASCII str, and a form may send anything
    return token is not None and hmac.compare_digest(csrf_token(sid).encode(), token.encode("utf-8", "replace"))
