"""A user's mobile number (`user add --mobile`): mainland China, kept as its 11 digits.

Typed forms people use — full-width digits, spaces or dashes between groups, a +86 / 0086
prefix — all give the same stored number; anything else is refused (exit 2) saying why.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, update

from duban.errors import UsageError
from duban.service.names import normalise
from duban.storage.tables import USERS

_MOBILE = re.compile(r"1[3-9]\d{9}")


def checked(text: str) -> str:
    plain = re.sub(r"[\s\-()]", "", normalise(text))
    plain = re.sub(r"^(\+86|0086)", "", plain)
    if not _MOBILE.fullmatch(plain) or not plain.isascii():
        raise UsageError(f"--mobile {text[:40]!r}：手机号应为 11 位数字、以 1 开头（如 13800138000，可带 +86）")
    return plain


def store(conn: Connection, user: str, mobile: str | None) -> None:
    conn.execute(update(USERS).where(USERS.c.name == user).values(mobile=mobile))
