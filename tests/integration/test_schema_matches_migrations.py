"""The schema is declared once (`duban.storage.tables.METADATA`): a database the migrations
made, the way `duban init` makes it, is exactly that schema, on SQLite and PostgreSQL.

Alembic's own comparison (the one `alembic revision --autogenerate` runs) finds the
differences: tables, columns, types, nullability, indexes, unique constraints and foreign
keys. A column added to tables.py without a migration, or a migration that creates
something tables.py does not declare, fails here. Alembic does not compare a partial index's
predicate (`postgresql_where` / `sqlite_where`), so a test here compares those with what the
database reflects.
"""

from __future__ import annotations

import re
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Index, MetaData, String, inspect
from sqlalchemy.engine import Dialect

from duban.storage import schema
from duban.storage.database import Database
from duban.storage.tables import METADATA


def predicate(where: Any, dialect: Dialect) -> str:
    """An index's WHERE clause as comparable text: no parentheses, single spaces, lower case."""
    sql = where if isinstance(where, str) else str(where.compile(
        dialect=dialect, compile_kwargs={"literal_binds": True, "include_table": False}))
    return " ".join(re.sub(r"[()]", " ", sql).split()).lower()


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

    def test_partial_indexes_have_the_declared_predicates(self, any_db_url: str) -> None:
        """Each index the database has is partial exactly when declared so, with the same WHERE clause."""
        db = Database(any_db_url)
        try:
            db.migrate()
            with db.engine.connect() as conn:
                dialect, reflected = conn.dialect, inspect(conn)
                where_key = f"{dialect.name}_where"
                found = {(t.name, ix["name"]): ix["dialect_options"].get(where_key)
                         for t in METADATA.sorted_tables for ix in reflected.get_indexes(t.name)}
        finally:
            db.dispose()
        declared = {(t.name, ix.name): ix.dialect_options[dialect.name].get("where")
                    for t in METADATA.sorted_tables for ix in t.indexes}
        assert sorted(found) == sorted(declared)

        def text_of(where: Any) -> str | None:
            return None if where is None else predicate(getattr(where, "text", where), dialect)

        assert {k: text_of(v) for k, v in found.items()} == {k: text_of(v) for k, v in declared.items()}
        assert any(v is not None for v in declared.values())  # the comparison has something to compare

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

