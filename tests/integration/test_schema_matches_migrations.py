"""The schema is declared once (`duban.storage.tables.METADATA`): a database the migrations
made, the way `duban init` makes it, is exactly that schema, on SQLite and PostgreSQL.

Alembic's own comparison (the one `alembic revision --autogenerate` runs) finds the
differences: tables, columns, types, nullability, indexes, unique constraints and foreign
keys. A column added to tables.py without a migration, or a migration that creates
something tables.py does not declare, fails here.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Index, MetaData, String, inspect

from duban.storage import schema
from duban.storage.database import Database
from duban.storage.tables import METADATA


def migrated_diff(url: str, metadata: MetaData) -> tuple[list[Any], list[str], str | None]:
    """Migrate a fresh database to head with `Database.migrate` (what `duban init` runs), then
    compare it with ``metadata``: alembic's differences, the tables, the stored revision."""
    db = Database(url)
    try:
        db.migrate()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, metadata), inspect(conn).get_table_names(), schema.stored(conn)
    finally:
        db.dispose()


class TestSchemaMatchesMigrations:
    def test_a_migrated_database_is_the_declared_schema(self, any_db_url: str) -> None:
        """After upgrading a fresh database to head, alembic finds nothing to change against the
        metadata (PostgreSQL skips with the reason when no server answers, fails under
        DUBAN_REQUIRE_POSTGRES=1: tests/conftest.py)."""
        diff, names, revision = migrated_diff(any_db_url, METADATA)
        assert revision == schema.head()
        assert sorted(set(names) - {"alembic_version"}) == sorted(METADATA.tables)
        assert diff == []

    def test_a_change_missing_from_the_migrations_is_found(self, sqlite_url: str) -> None:
        """The comparison is not blind: a column, an index and a type declared but not migrated are each reported."""
        changed = MetaData()
        for t in METADATA.sorted_tables:
            t.to_metadata(changed)
        cases = changed.tables["cases"]
        cases.append_column(Column("priority", String, nullable=True))
        Index("ix_cases_title", cases.c.title)
        changed.tables["timers"].c.rung.type = String()
        diff, _, _ = migrated_diff(sqlite_url, changed)
        kinds = sorted(d[0][0] if isinstance(d, list) else d[0] for d in diff)
        assert kinds == ["add_column", "add_index", "modify_type"], diff

