"""Which schema revision a database is at, and whether this duban may use it (SPEC §16).

Every command checks, once, before its first read or write: a database with no
``alembic_version`` is not initialised ("run duban init"); one at a revision this duban
does not know was upgraded by a newer duban and is refused, never written ("upgrade
duban"); one at an older revision is upgraded by ``duban init`` first.

Alembic is not imported here: `duban case show` must start fast (README "Performance").
The revisions are read from the migration files' names (``0004_unit_directory.py`` is
revision ``0004``, a convention tests/e2e/test_bad_input_bounded.py holds against
alembic's own ScriptDirectory), and the stored one with a plain query.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, text

from duban.errors import StorageError

VERSIONS = Path(__file__).parent / "migrations" / "versions"
_FILE = re.compile(r"^(\d{4})_\w+\.py$")
NOT_INITIALISED = "is not initialised: run 'duban init'（数据库尚未初始化，请先运行 duban init）"


@cache
def revisions() -> tuple[str, ...]:
    """Every revision this duban ships, oldest first."""
    return tuple(sorted(m.group(1) for name in os.listdir(VERSIONS) if (m := _FILE.match(name))))


def head() -> str:
    return revisions()[-1]


def stored(conn: Connection) -> str | None:
    """The database's revision (None: alembic_version is empty). Raises the driver's error
    when the table does not exist (`Database.translate` says "run duban init")."""
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def refuse_newer(revision: str | None, where: str) -> None:
    """StorageError if ``revision`` is one this duban does not know (a newer duban's)."""
    if revision is not None and revision not in revisions():
        raise StorageError(
            f"database {where} has schema revision {revision}, newer than this duban knows "
            f"(newest {head()}): upgrade duban to use it; nothing was changed"
            "（数据库由更新版本的 duban 升级过，请先升级 duban）"
        )


def check(conn: Connection, where: str) -> None:
    """Refuse a database this duban must not use as it is (module docstring)."""
    revision = stored(conn)
    if revision is None:
        raise StorageError(f"database {where} {NOT_INITIALISED}")
    refuse_newer(revision, where)
    if revision != head():
        raise StorageError(
            f"database {where} has schema revision {revision}, older than this duban's {head()}: "
            "run 'duban init' to upgrade it（数据库版本较旧，请先运行 duban init 升级）"
        )
