"""Every direct use of the DBAPI driver: fixed SQL on the transaction's cursor, a lean hot path.

Building and executing a Core statement costs more Python time than SQLite takes to run the
few statements of a transition (LIBRARIES.md §3.2: a raw-cursor user lookup 32 µs against
117 µs for a prebuilt Core select), so the statements every step runs are written here once
as SQL text with ``?`` placeholders, identifiers double-quoted (``"trigger"`` is a keyword),
and sent to the driver's cursor by `run`. What keeps that as safe as Core:

- values pass through the columns' own SQLAlchemy type processors (`bind`, `result`), got
  from the public `TypeEngine.dialect_impl(dialect).bind_processor(dialect)` /
  ``.result_processor(dialect, None)`` — what Core itself calls — and cached here per
  (dialect, table, columns), so what is stored and read back is exactly what Core stores
  and reads, on SQLite and PostgreSQL alike;
- the text is turned into the driver's paramstyle once per statement (`for_driver`);
- driver errors are raised as SQLAlchemy's `DBAPIError` subclasses (`DBAPIError.instance`,
  as Core raises them), so `Database.translate` and the scheduler's retry test see the same
  exceptions whichever path a statement took.

No other duban module touches the driver's cursor; the other storage modules build their
statements with Core, or write their fixed SQL with the helpers here (one quoting style).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

Processor = Callable[[Any], Any] | None
IN_CHUNK = 500  # ids per IN (...) list: well inside SQLite's and PostgreSQL's parameter limits

_TEXT: dict[tuple[str, str], str] = {}
_PROCESSORS: dict[tuple[bool, str, str, str, tuple[str, ...]], tuple[Processor, ...]] = {}


# -- writing statements --------------------------------------------------------------
def quoted(names: Iterable[str]) -> str:
    """Column names as a statement lists them: double-quoted, comma-separated."""
    return ", ".join(f'"{n}"' for n in names)


def columns(table: Table) -> tuple[str, ...]:
    """The table's column names in declaration order."""
    return tuple(c.name for c in table.columns)


def marks(n: int) -> str:
    """``?, ?, …`` for n values."""
    return ", ".join("?" * n)


def insert_sql(table: Table, names: Sequence[str]) -> str:
    return f"INSERT INTO {table.name} ({quoted(names)}) VALUES ({marks(len(names))})"


def select_sql(table: Table, names: Sequence[str], rest: str = "") -> str:
    return f"SELECT {quoted(names)} FROM {table.name}{rest}"


def assignments(names: Iterable[str]) -> str:
    """``"a" = ?, "b" = ?`` for an UPDATE's SET list."""
    return ", ".join(f'"{n}" = ?' for n in names)


def for_driver(dialect: Dialect, sql: str) -> str:
    """`sql` written with ``?`` placeholders, in the driver's paramstyle."""
    if dialect.paramstyle == "qmark":
        return sql
    key = (dialect.paramstyle, sql)
    found = _TEXT.get(key)
    if found is None:
        found = _TEXT[key] = sql.replace("%", "%%").replace("?", "%s")
    return found


# -- values through the columns' types -------------------------------------------------
def processors(dialect: Dialect, table: Table, names: Sequence[str], *, bind: bool) -> tuple[Processor, ...]:
    """The columns' SQLAlchemy type processors for this dialect: to the driver or from it."""
    key = (bind, dialect.name, dialect.driver, table.name, tuple(names))
    found = _PROCESSORS.get(key)
    if found is None:
        impls = [table.c[n].type.dialect_impl(dialect) for n in names]
        found = tuple(t.bind_processor(dialect) if bind else t.result_processor(dialect, None) for t in impls)
        _PROCESSORS[key] = found
    return found


def bind(dialect: Dialect, table: Table, names: Sequence[str], values: Sequence[Any]) -> list[Any]:
    """Values for the driver, as Core binds them to these columns (None stays None)."""
    return [v if p is None or v is None else p(v)
            for p, v in zip(processors(dialect, table, names, bind=True), values, strict=True)]


def result(dialect: Dialect, table: Table, names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    """A driver row as Core reads these columns (None stays None)."""
    return {n: v if p is None or v is None else p(v)
            for n, p, v in zip(names, processors(dialect, table, names, bind=False), row, strict=True)}


# -- running them ----------------------------------------------------------------------
def _raised(dialect: Dialect, text: str | None, params: Any, exc: Exception) -> Exception:
    """The driver's error as SQLAlchemy's (a `DBAPIError` subclass, as Core raises it)."""
    return DBAPIError.instance(text, params, exc, dialect.loaded_dbapi.Error, dialect=dialect)


def run(conn: Connection, sql: str, params: Sequence[Any] = (), *, many: Sequence[Sequence[Any]] | None = None) -> Any:
    """Execute fixed SQL (``?`` placeholders) on the transaction's DBAPI cursor; returns the
    cursor (the caller closes it). Driver errors are raised as SQLAlchemy's."""
    dialect = conn.dialect
    text = for_driver(dialect, sql)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many is None:
            cursor.execute(text, params)
        else:
            cursor.executemany(text, many)
    except dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise _raised(dialect, text, params, exc) from exc
    return cursor


def execute(conn: Connection, sql: str, params: Sequence[Any] = (), *,
            many: Sequence[Sequence[Any]] | None = None) -> int:
    """`run` a statement that returns no rows; its row count."""
    cursor = run(conn, sql, params, many=many)
    count = int(cursor.rowcount)
    cursor.close()
    return count


def in_transaction(conn: Connection) -> bool:
    """Whether the driver's connection is inside a transaction (SQLite ends one by itself on
    some errors, without SQLAlchemy hearing of it)."""
    return bool(conn.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]


def fetchall(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """`run` a query; all its driver rows."""
    cursor = run(conn, sql, params)
    try:
        return list(cursor.fetchall())
    finally:
        cursor.close()


def fetchone(conn: Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """`run` a query; its first driver row, or None."""
    cursor = run(conn, sql, params)
    try:
        return cursor.fetchone()
    finally:
        cursor.close()


def fetchmany(cursor: Any, dialect: Dialect, size: int) -> Sequence[Sequence[Any]]:
    """The next rows of a cursor `run` opened; driver errors raised as SQLAlchemy's."""
    try:
        rows: Sequence[Sequence[Any]] = cursor.fetchmany(size)
    except dialect.loaded_dbapi.Error as exc:
        raise _raised(dialect, None, None, exc) from exc
    return rows


def streamed(conn: Connection, sql: str, params: Sequence[Any], size: int) -> Iterator[Sequence[Sequence[Any]]]:
    """A query's driver rows a batch at a time from a server-side cursor (PostgreSQL: memory
    stays flat whatever the size); SQLAlchemy opens and closes that cursor. The size is given
    to `partitions` itself: SQLAlchemy 2.1 does not apply `yield_per` there for a driver-level
    statement, and the server-side cursor's first partition was every row of the query (at
    1,000,000 cases `audit verify`'s workers on PostgreSQL grew to 4.8 GB)."""
    rows = conn.execution_options(stream_results=True, yield_per=size).exec_driver_sql(
        for_driver(conn.dialect, sql), tuple(params))
    try:
        yield from rows.partitions(size)
    finally:
        rows.close()


def rows_by_case(conn: Connection, sql: str, table: Table, names: Sequence[str], case_ids: Sequence[int],
                 extra: Sequence[Any] = ()) -> dict[int, list[dict[str, Any]]]:
    """Rows of several cases in one query per chunk (`sql` has ``{}`` where the ids go, and
    selects `names` of `table`, ``case_id`` among them), grouped by case in the query's order:
    no query per case when a list is shown."""
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in case_ids}
    dialect = conn.dialect
    for start in range(0, len(case_ids), IN_CHUNK):
        chunk = list(case_ids[start : start + IN_CHUNK])
        for row in fetchall(conn, sql.format(marks(len(chunk))), (*chunk, *extra)):
            record = result(dialect, table, names, row)
            found[record["case_id"]].append(record)
    return found
