"""The Core tables the code reads and writes (`duban.storage.tables`) declare exactly what the
SQLModel classes alembic works from (`duban.storage.models`) declare."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import JSON, Boolean, Column, Date, Float, Integer, Interval, LargeBinary, String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel.sql.sqltypes import UTCDateTime as SQLModelUTCDateTime

from duban.storage import models, tables

CORE = {t.name: t for t in tables.METADATA.sorted_tables}
# scheduler_nodes is the scheduler's own, declared only with SQLModel (duban.storage.scheduler_tables)
DECLARED = {t.name: t for t in models.CaseRow.metadata.sorted_tables if t.name != "scheduler_nodes"}
DIALECTS = [sqlite.dialect(), postgresql.psycopg.dialect()]
SHANGHAI = ZoneInfo("Asia/Shanghai")
SAMPLES: list[tuple[type, Any]] = [  # a value for each column type (the first that matches)
    (tables.UTCDateTime, datetime(2026, 11, 2, 9, 30, tzinfo=SHANGHAI)), (JSON, {"k": ["区财政局", 1]}),
    (Boolean, True), (Integer, 7), (Float, 1.5), (Date, date(2026, 10, 1)), (String, "区发改局"),
    (LargeBinary, b"\x00%PDF"),
]


def ddl(table: Table, dialect: Dialect) -> list[str]:
    return [str(CreateTable(table).compile(dialect=dialect)),
            *sorted(str(CreateIndex(i).compile(dialect=dialect)) for i in table.indexes)]


def default(column: Column[Any]) -> Any:
    d = column.default
    if d is None:
        return None
    return ("called", d.arg(None)) if d.is_callable else ("value", d.arg)  # type: ignore[attr-defined]


def roundtrip(column: Column[Any], dialect: Dialect, value: Any) -> tuple[Any, Any]:
    """A value as bound for the driver, and read back from that."""
    bind = column.type._cached_bind_processor(dialect)
    read = column.type._cached_result_processor(dialect, None)
    stored = bind(value) if bind else value
    return plain(stored), plain(read(stored) if read else stored)


def plain(value: Any) -> Any:
    """psycopg's Json wrapper (no equality of its own) as what it wraps."""
    return (type(value).__name__, value.obj) if hasattr(value, "obj") else value


class TestSameSchema:
    def test_the_same_tables(self) -> None:
        """Every table alembic knows (but the scheduler's) is declared in Core, and no other."""
        assert sorted(CORE) == sorted(DECLARED)

    @pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
    @pytest.mark.parametrize("name", sorted(DECLARED))
    def test_the_same_ddl(self, name: str, dialect: Dialect) -> None:
        """CREATE TABLE and its CREATE INDEX statements are identical on SQLite and PostgreSQL."""
        assert ddl(CORE[name], dialect) == ddl(DECLARED[name], dialect)

    @pytest.mark.parametrize("name", sorted(DECLARED))
    def test_the_same_columns(self, name: str) -> None:
        """Columns in the same order, with the same keys, nullability, indexes, foreign keys and defaults."""
        def columns(t: Table) -> list[tuple[Any, ...]]:
            return [(c.name, c.primary_key, c.nullable, c.autoincrement, bool(c.index), bool(c.unique),
                     sorted(f.target_fullname for f in c.foreign_keys), default(c)) for c in t.columns]

        assert columns(CORE[name]) == columns(DECLARED[name])

    @pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
    @pytest.mark.parametrize("name", sorted(DECLARED))
    def test_the_same_values_stored_and_read(self, name: str, dialect: Dialect) -> None:
        """Each column's type processors (what the repository runs) store and read a value identically."""
        samples = {c.name: next(v for kind, v in SAMPLES if isinstance(c.type, kind)) for c in CORE[name].columns}
        core = {c.name: roundtrip(c, dialect, samples[c.name]) for c in CORE[name].columns}
        assert core == {c.name: roundtrip(c, dialect, samples[c.name]) for c in DECLARED[name].columns}


class TestInstants:
    @pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
    def test_utc_datetime_behaves_as_sqlmodels(self, dialect: Dialect) -> None:
        """Aware instants bind as UTC; naive values read back as UTC and aware ones converted to it;
        a naive instant is refused; a timedelta compares as an interval."""
        ours, theirs = tables.UTCDateTime(), SQLModelUTCDateTime()
        aware = datetime(2026, 11, 2, 9, tzinfo=SHANGHAI)
        for value in (aware, None):
            assert ours.process_bind_param(value, dialect) == theirs.process_bind_param(value, dialect)
        for stored in (datetime(2026, 11, 2, 1), aware, None):  # noqa: DTZ001 (SQLite stores UTC without an offset)
            read = ours.process_result_value(stored, dialect)
            assert read == theirs.process_result_value(stored, dialect)
            assert read is None or read.tzinfo is UTC
        for refused in (ours, theirs):
            with pytest.raises(ValueError, match="timezone"):
                refused.process_bind_param(datetime(2026, 11, 2, 9), dialect)  # noqa: DTZ001
        assert isinstance(ours.coerce_compared_value(None, timedelta(hours=1)), Interval)
        assert ours.coerce_compared_value(None, aware) is ours
        assert repr(ours) == repr(theirs)


class TestModelsOnDemand:
    def test_sqlmodel_classes_are_reachable_from_tables(self) -> None:
        """`tables.CaseRow` (what the migration environment reads) is the SQLModel class."""
        assert tables.CaseRow is models.CaseRow
        with pytest.raises(AttributeError):
            _ = tables.NoSuchRow
