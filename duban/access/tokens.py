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

from sqlalchemy import Connection, insert, select, update

from duban.access.credentials import digest
from duban.errors import NotFoundError, RefusedError, UsageError
from duban.storage import sql
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


# One query for the token and its user, written once as fixed SQL on the driver's cursor
# (`duban.storage.sql`): it runs for every API call, and a Core select cost several times the
# query itself (bench/http.py); values still pass through the columns' own types.
_USER_COLUMNS = sql.columns(USERS)
_TOKEN_COLUMNS = ("id", "revoked_at", "expires_at", "last_used_at")
_LOOKUP = ("SELECT " + ", ".join([f'u."{n}"' for n in _USER_COLUMNS] + [f't."{n}"' for n in _TOKEN_COLUMNS])
           + f' FROM {API_TOKENS.name} t JOIN {USERS.name} u ON u."name" = t."user_name" WHERE t."token_hash" = ?')


def lookup(conn: Connection, token: str, now: datetime) -> Holder | None:
    """Who a bearer token acts as, or None (unknown, revoked, expired, user disabled); reads only."""
    if not token.startswith(PREFIX):
        return None
    row = sql.fetchone(conn, _LOOKUP, (digest(token),))
    if row is None:
        return None
    split = len(_USER_COLUMNS)
    user = sql.result(conn.dialect, USERS, _USER_COLUMNS, row[:split])
    found = sql.result(conn.dialect, API_TOKENS, _TOKEN_COLUMNS, row[split:])
    if status(found, now, user["disabled_at"] is not None) != "active":
        return None
    last = found["last_used_at"]
    return Holder(user, found["id"], last is None or abs(now - last) >= LAST_USE_STEP)


def mark_used(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(API_TOKENS).where(API_TOKENS.c.id == token_id).values(last_used_at=now))
