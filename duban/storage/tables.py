"""The tables the code reads and writes, in SQLAlchemy Core.

SQLModel declares the schema (`duban.storage.models`: alembic's migrations are made from
those classes and compared against them); the repository works with Core, which
LIBRARIES.md §3 measured at 3.8× the ORM's speed per transaction. The tables are declared
here a second time, in Core, because importing sqlmodel loads SQLAlchemy's ORM and pydantic
and building its classes costs more than everything else `duban case show` does after
importing SQLAlchemy (README "Performance": start-up under 0.3 s). tests/unit/test_tables.py
holds the two declarations to each other — DDL on SQLite and PostgreSQL, column defaults,
type processors — so a column changed in one and not the other fails the tests. The
SQLModel classes stay reachable here (`tables.CaseRow` …), imported on first use.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    Interval,
    MetaData,
    String,
    Table,
    TypeDecorator,
)

if TYPE_CHECKING:
    from sqlalchemy.sql.type_api import TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Aware instants stored in UTC (SQLite keeps them without an offset); read back as aware
    UTC. The type sqlmodel gives every `datetime` field (`sqlmodel.sql.sqltypes.UTCDateTime`,
    LIBRARIES.md §3), with the same behaviour (test-checked), so reads and writes through
    these tables store and return exactly what the SQLModel classes would."""

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def __repr__(self) -> str:
        return "UTCDateTime()"

    def coerce_compared_value(self, op: Any, value: Any) -> TypeEngine[Any]:
        return Interval() if isinstance(value, timedelta) else self

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("Datetime values must have timezone information (an aware instant)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


METADATA = MetaData()


def _required(name: str, type_: Any, *args: Any, **kw: Any) -> Column[Any]:
    return Column(name, type_, *args, nullable=False, **kw)


def _optional(name: str, type_: Any, *args: Any, **kw: Any) -> Column[Any]:
    return Column(name, type_, *args, nullable=True, **kw)


CASES = Table(
    "cases", METADATA,
    Column("id", Integer, primary_key=True),
    _required("workflow", String, index=True),
    _required("workflow_version", Integer),
    _required("state", String, index=True),
    _required("title", String),
    _required("lead_unit", String, index=True),
    _required("co_units", JSON, default=list),
    _required("opened_at", UTCDateTime()),
    _required("opened_by", String),
    _optional("due_rule", String),
    _optional("due_at", UTCDateTime(), index=True),
    _optional("closed_at", UTCDateTime()),
    _required("escalation_level", Integer, default=0),
    _required("overdue", Boolean, default=False),
    _required("suspended", Boolean, default=False),
    _required("deadlines", JSON, default=dict),
    _required("data", JSON, default=dict),
    _required("version", Integer, default=1),  # optimistic concurrency: every update checks and bumps it
    _required("updated_at", UTCDateTime()),
)

# Lead and co-units of each case, for `case list --unit` and unit-scoped reports.
CASE_UNITS = Table(
    "case_units", METADATA,
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True),
    Column("unit", String, primary_key=True, index=True),
    _required("is_lead", Boolean),
)

# A durable timer: one rung of one deadline's ladder on one case.
TIMERS = Table(
    "timers", METADATA,
    Column("id", Integer, primary_key=True),
    _required("case_id", Integer, ForeignKey("cases.id"), index=True),
    _required("deadline", String),
    _required("rung", Integer),
    _required("due_at", UTCDateTime()),
    _required("approximate", Boolean, default=False),
    _required("status", String, default="pending"),  # pending | claimed | fired | cancelled
    _optional("claimed_by", String),
    _optional("lease_until", UTCDateTime()),
    _optional("fired_at", UTCDateTime()),
    Index("ix_timers_status_due_at", "status", "due_at"),  # what is due: the sweep's claim
    Index("ix_timers_case_id_due_at", "case_id", "due_at"),  # what is due on these cases (status left out:
    # claiming and firing change it, and would then rewrite this index too)
)

# One link of the audit chain. Append-only: never updated, never deleted.
AUDIT = Table(
    "audit_events", METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    _optional("case_id", Integer, index=True),
    _required("at", UTCDateTime()),
    _required("actor", String),
    _required("role", String),
    _required("action", String),
    _optional("trigger", String),
    _optional("from_state", String),
    _optional("to_state", String),
    _required("note", String, default=""),
    _required("data", JSON, default=dict),
    _required("prev_hash", String),
    _required("hash", String),
)

# A signed checkpoint of the audit log (SPEC §15) and the Merkle frontier at its size.
CHECKPOINTS = Table(
    "checkpoints", METADATA,
    Column("id", Integer, primary_key=True),
    _required("size", Integer, index=True),  # events covered: seq 1 … size
    _required("root", String),  # the Merkle root (hex)
    _optional("head_hash", String),  # the hash of event `size` (the next checkpoint starts after it)
    _required("frontier", JSON, default=list),  # right-edge subtree hashes (hex)
    _required("origin", String),
    _required("key_id", String),  # the signing key's note key ID (hex)
    _required("fingerprint", String),  # SHA-256 of its public key
    _required("signed_at", UTCDateTime()),
    _required("note", String),  # the signed note, as mailed
)

# An audit export made (SPEC §15): the scheduler signs a checkpoint after each.
AUDIT_EXPORTS = Table(
    "audit_exports", METADATA,
    Column("id", Integer, primary_key=True),
    _required("exported_at", UTCDateTime()),
    _required("format", String),
    _required("rows", Integer),
    _optional("head_seq", Integer),  # the chain head when exported
)

# The notices outbox: 催办通知, 督办通知, 通报 … to a unit or a role.
NOTICES = Table(
    "notices", METADATA,
    Column("id", Integer, primary_key=True),
    _required("case_id", Integer, ForeignKey("cases.id"), index=True),
    _required("created_at", UTCDateTime()),
    _required("kind", String),
    _required("recipient", String, index=True),
    _optional("level", Integer),
    _required("title", String),
)

# The directory: who may act, in which role and unit.
USERS = Table(
    "users", METADATA,
    Column("name", String, primary_key=True),
    _required("role", String),
    _optional("unit", String),
    _required("created_at", UTCDateTime()),
)

# The unit directory (SPEC §16): every unit a case or a user may name. Cases, users and
# notices hold a unit by its name; a rename rewrites them (duban.storage.units).
UNITS = Table(
    "units", METADATA,
    Column("name", String, primary_key=True),
    _required("created_at", UTCDateTime()),
)

# A unit's former names (曾用名), each pointing at the unit's current name.
UNIT_NAMES = Table(
    "unit_names", METADATA,
    Column("name", String, primary_key=True),
    _required("unit", String, index=True),
    _required("renamed_at", UTCDateTime()),
)

# A day that differs from Monday–Friday: a holiday, or a make-up working day (调休).
CAL_DAYS = Table(
    "calendar_days", METADATA,
    Column("day", Date, primary_key=True),
    _required("kind", String),  # holiday | workday
    _required("name", String, default=""),
    _required("source", String, default=""),
)

# A year whose official schedule is loaded; other years count weekends only.
CAL_YEARS = Table(
    "calendar_years", METADATA,
    Column("year", Integer, primary_key=True, autoincrement=False),
    _required("source", String),
    _required("loaded_at", UTCDateTime()),
)

# A workflow definition pinned the first time a case used it, so it can never drift.
WORKFLOW_VERSIONS = Table(
    "workflow_versions", METADATA,
    Column("name", String, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    _required("fingerprint", String),
    _required("source", String),
    _required("body", JSON),
    _required("pinned_at", UTCDateTime()),
)


def table(model: Any) -> Table:
    """The Core table of a SQLModel class (typed, for the repository)."""
    t = model.__table__
    assert isinstance(t, Table)
    return t


_MODELS = ("CaseRow", "CaseUnitRow", "TimerRow", "AuditEventRow", "CheckpointRow", "AuditExportRow", "NoticeRow", "UserRow", "UnitRow", "UnitNameRow", "CalendarDayRow",
           "CalendarYearRow", "WorkflowVersionRow")


def __getattr__(name: str) -> Any:
    """The SQLModel classes (`tables.CaseRow.metadata` is what alembic compares against),
    imported on first use only: reading and writing never needs them."""
    if name in _MODELS:
        from duban.storage import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
