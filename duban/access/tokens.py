"""API tokens for integrations (SPEC §12): `Authorization: Bearer TOKEN` acts as its user.

A token is printed once, when it is made, and stored only as its SHA-256. It stops working
at once when revoked, when it expires, and while its user is disabled (enabling the user
again restores it; revoke it to end it for good). Each token has a number, which `token
list` and the audit events show and `token revoke` takes.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from duban.access.credentials import digest
from duban.errors import NotFoundError, RefusedError, UsageError
from duban.storage.tables import API_TOKENS, USERS

PREFIX = "dbn_"  # tells a duban token apart in a secret scanner or a config file
DEFAULT_EXPIRY = "90d"
MAX_DAYS = 3650
_EXPIRY = re.compile(r"(\d+)d", re.ASCII)
STATUS_LABELS = {"active": "有效", "expired": "已过期", "revoked": "已撤销", "user_disabled": "用户已停用"}


@dataclass(frozen=True)
class NewToken:
    id: int
    token: str  # the only time it exists outside the holder's hands
    expires_at: datetime | None

    def __repr__(self) -> str:
        return f"NewToken(id={self.id})"


def lifetime(text: str) -> timedelta | None:
    """`90d` → 90 days; `never` → None (no expiry). UsageError (exit 2) for anything else."""
    typed = unicodedata.normalize("NFKC", text).strip().lower()  # ９０ｄ is 90d
    if typed == "never":
        return None
    m = _EXPIRY.fullmatch(typed)
    if m is None or not 1 <= int(m.group(1)) <= MAX_DAYS:
        raise UsageError(f"--expires {text}：有效期写作天数，如 90d（1d 至 {MAX_DAYS}d），或 never（永不过期）")
    return timedelta(days=int(m.group(1)))


def create(conn: Connection, user: str, label: str | None, expires: timedelta | None, now: datetime) -> NewToken:
    token = PREFIX + secrets.token_urlsafe(32)
    until = now + expires if expires is not None else None
    number = int(conn.execute(insert(API_TOKENS).values(
        user_name=user, label=label, token_hash=digest(token), created_at=now, expires_at=until,
    ).returning(API_TOKENS.c.id)).scalar_one())
    return NewToken(number, token, until)


def status(row: dict[str, Any], now: datetime, user_disabled: bool) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] is not None and now >= row["expires_at"]:
        return "expired"
    return "user_disabled" if user_disabled else "active"


def listing(conn: Connection, now: datetime, user: str | None = None) -> list[dict[str, Any]]:
    """Every token (of one user), oldest first, with its status; never its hash."""
    stmt = (select(API_TOKENS.c.id, API_TOKENS.c.user_name, API_TOKENS.c.label, API_TOKENS.c.created_at,
                   API_TOKENS.c.expires_at, API_TOKENS.c.revoked_at, API_TOKENS.c.last_used_at,
                   USERS.c.disabled_at)
            .join(USERS, USERS.c.name == API_TOKENS.c.user_name).order_by(API_TOKENS.c.id))
    if user is not None:
        stmt = stmt.where(API_TOKENS.c.user_name == user)
    rows = []
    for r in conn.execute(stmt):
        row = dict(r._mapping)
        disabled = row.pop("disabled_at") is not None
        rows.append({**row, "status": status(row, now, disabled)})
    return rows


def revoke(conn: Connection, number: int, now: datetime) -> dict[str, Any]:
    """Revoke a token by its number: the row as it was, or exit 3 (no such) / 4 (already)."""
    row = conn.execute(select(API_TOKENS).where(API_TOKENS.c.id == number)).first()
    if row is None:
        raise NotFoundError(f"没有编号为 {number} 的令牌（查看：duban token list）")
    if row.revoked_at is not None:
        raise RefusedError(f"令牌 {number} 已于先前撤销，无需再次撤销")
    conn.execute(update(API_TOKENS).where(API_TOKENS.c.id == number).values(revoked_at=now))
    return dict(row._mapping)


# Last use is kept to the minute: every API call reads its token, and writing the row on each
# one would make every read a write transaction (on SQLite, one writer at a time for all of them).
LAST_USE_STEP = timedelta(minutes=1)


@dataclass(frozen=True)
class Holder:
    user: dict[str, Any]
    token_id: int
    stale_use: bool  # last_used_at is older than LAST_USE_STEP: `mark_used` it


# One query for the token and its user, built once: this runs for every API call.
_LOOKUP = (select(USERS, API_TOKENS.c.id.label("token_id"), API_TOKENS.c.revoked_at, API_TOKENS.c.expires_at,
                  API_TOKENS.c.last_used_at)
           .join(USERS, USERS.c.name == API_TOKENS.c.user_name)
           .where(API_TOKENS.c.token_hash == bindparam("token_hash")))


def lookup(conn: Connection, token: str, now: datetime) -> Holder | None:
    """Who a bearer token acts as, or None (unknown, revoked, expired, user disabled); reads only."""
    if not token.startswith(PREFIX):
        return None
    row = conn.execute(_LOOKUP, {"token_hash": digest(token)}).first()
    if row is None:
        return None
    found = dict(row._mapping)
    if status(found, now, found["disabled_at"] is not None) != "active":
        return None
    stale = row.last_used_at is None or abs(now - row.last_used_at) >= LAST_USE_STEP
    return Holder({c.name: found[c.name] for c in USERS.c}, row.token_id, stale)


def mark_used(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(API_TOKENS).where(API_TOKENS.c.id == token_id).values(last_used_at=now))
