"""Shared fixtures: a fresh SQLite file or PostgreSQL database per test, and a CLI runner.

PostgreSQL tests skip with a reason when no server answers at 127.0.0.1:5432, unless
DUBAN_REQUIRE_POSTGRES=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

PG_ADMIN_URL = os.environ.get("DUBAN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
COUNTED_TABLES = ("cases", "case_units", "timers", "audit_events", "notices", "users", "units", "unit_names",
                  "workflow_versions", "credentials", "sign_in_failures", "sessions", "api_tokens", "checkpoints",
                  "audit_exports", "attachments", "watches", "notice_reads")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'duban.db'}"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"
        if os.environ.get("DUBAN_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (DUBAN_REQUIRE_POSTGRES=1 makes PostgreSQL tests required)")
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin: Any) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import text

    name = f"duban_t_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_url(request: pytest.FixtureRequest) -> str:
    """Run a storage test on both SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


def _migrated(url: str) -> Iterator[Any]:
    from duban.storage.database import Database

    d = Database(url)
    d.migrate()
    yield d
    d.dispose()


@pytest.fixture
def db(any_db_url: str) -> Iterator[Any]:
    """A migrated, empty `Database` on SQLite and on PostgreSQL (no calendar, no users)."""
    yield from _migrated(any_db_url)


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Any]:
    """A migrated, empty `Database` on a SQLite file."""
    yield from _migrated(sqlite_url)


def add_unit(db: Any, name: str) -> None:
    """One unit row written in a write transaction of its own (the smallest write there is)."""
    from datetime import UTC, datetime

    from duban.storage.tables import UNITS

    with db.write() as conn:
        conn.execute(UNITS.insert().values(name=name, created_at=datetime(2027, 3, 1, 1, 0, tzinfo=UTC)))


def unit_count(db: Any) -> int:
    """How many unit rows a read transaction sees."""
    from sqlalchemy import func, select

    from duban.storage.tables import UNITS

    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(UNITS)).scalar_one())


def row_counts(db_url: str) -> dict[str, int]:
    """Rows per table: the 'nothing changed' check of every bad-input test."""
    from sqlalchemy import create_engine, func, select, table

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {t: int(conn.execute(select(func.count()).select_from(table(t))).scalar_one()) for t in COUNTED_TABLES}
    finally:
        engine.dispose()


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


class Duban:
    """Runs `duban` commands in-process against one database, as a user would type them."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.runner = CliRunner()

    def __call__(self, *args: str, now: str | None = None, actor: str | None = None,
                 env: dict[str, str] | None = None) -> Run:
        from duban.cli import cli

        full = ["--db", self.db_url]
        if now:
            full += ["--now", now]
        if actor:
            full += ["--actor", actor]
        result = self.runner.invoke(cli, [*full, *args], env={"DUBAN_NOW": "", "DUBAN_ACTOR": "", **(env or {})},
                                    catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    def ok(self, *args: str, **kw: Any) -> Run:
        run = self(*args, **kw)
        assert run.code == 0, f"duban {' '.join(args)} exited {run.code}: {run.stderr}"
        return run


@pytest.fixture
def duban(sqlite_url: str) -> Duban:
    """A CLI on a fresh SQLite database, initialised, with an office, a leader and two unit users."""
    d = Duban(sqlite_url)
    d.ok("init")
    d.ok("user", "add", "wang", "--role", "office")
    d.ok("user", "add", "li", "--role", "leader")
    d.ok("user", "add", "zhao", "--role", "inspector")
    d.ok("user", "add", "fgj", "--role", "unit", "--unit", "区发改局")
    d.ok("user", "add", "czj", "--role", "unit", "--unit", "区财政局")
    d.ok("user", "add", "scj", "--role", "unit", "--unit", "区市场监管局")
    return d
