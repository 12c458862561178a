"""SQLite's connection settings: the pragmas each new connection gets, the BEGIN each
transaction starts with, and the statement compiler that writes index hints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from duban.storage.sql import execute

READ_ONLY = "duban_read_only"  # a connection's execution option: its transactions only read
# The key of a SQLite write connection's info while its BEGIN must not wait (`Database.at_once`).
NO_WAIT = "duban_no_wait"
BUSY_MS = 10_000  # SQLite's busy_timeout: how long a writer waits for another process's write


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (pysqlite's own deferred BEGIN breaks BEGIN IMMEDIATE).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    cur.close()


def sqlite_begin(conn: Connection) -> None:
    # Straight to the driver (this runs for every transaction); its errors raised as Core raises them.
    if conn.get_execution_options().get(READ_ONLY, False):
        execute(conn, "BEGIN")
    elif not conn.info.get(NO_WAIT):
        execute(conn, "BEGIN IMMEDIATE")
    else:  # another process writing: "database is locked" at once, not after the busy wait
        execute(conn, "PRAGMA busy_timeout=0")
        try:
            execute(conn, "BEGIN IMMEDIATE")
        finally:
            execute(conn, f"PRAGMA busy_timeout={BUSY_MS}")


def sqlite_compiler() -> type:
    """SQLite's statement compiler, with `Select.with_hint(table, "INDEXED BY ix", "sqlite")`
    written after the table as SQLite takes it (SQLAlchemy's SQLite compiler drops table hints).
    With no statistics (a duban database gets no ANALYZE) SQLite's planner cannot see that an
    index in the order asked for beats filtering on `closed_at` and sorting (storage.listing)."""
    from sqlalchemy.dialects.sqlite.base import SQLiteCompiler

    class HintedSQLiteCompiler(SQLiteCompiler):
        def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
            return text if text and text.startswith("INDEXED BY ") else None

    return HintedSQLiteCompiler
