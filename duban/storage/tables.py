"""The schema: every table duban reads and writes, declared once, in SQLAlchemy Core.

The repository reads and writes through these tables (Core: 3.8× the ORM's speed per
transaction, LIBRARIES.md §3, and `duban case show` within its start-up target); the migration
environment compares against them; tests/integration/test_schema_matches_migrations.py
migrates a fresh database to head, as `duban init` does, and fails on any difference alembic
finds between it and this metadata, on SQLite and PostgreSQL.
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
    Float,
    ForeignKey,
    Index,
    Integer,
    Interval,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
    text,
)

if TYPE_CHECKING:
    from sqlalchemy.sql.type_api import TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Aware instants stored in UTC (SQLite keeps them without an offset); read back as aware
    UTC; a naive instant is refused. The migrations create these columns as
    `DateTime(timezone=True)`. The behaviour is that of the type sqlmodel gave every
    `datetime` field (LIBRARIES.md §3), which wrote the rows of databases made before
    the schema was declared only here."""

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
    _optional("next_due_at", UTCDateTime()),  # the nearest running deadline, None if none or closed (0011)
)
# The to-do's order, nearest running deadline first (0011, storage.listing), on open cases only.
_OPEN: dict[str, Any] = {"sqlite_where": CASES.c.closed_at.is_(None), "postgresql_where": CASES.c.closed_at.is_(None)}
Index("ix_cases_open_next_due_at", CASES.c.next_due_at, CASES.c.id, **_OPEN)
# The reads of an office at scale (migration 0009, README "Performance"): a unit's open cases
# by nearest deadline, the open cases in the states where a role has a step, a period's cases.
Index("ix_cases_open_lead_unit_due_at", CASES.c.lead_unit, CASES.c.due_at, **_OPEN)
Index("ix_cases_open_workflow_state", CASES.c.workflow, CASES.c.state, **_OPEN)
Index("ix_cases_opened_at", CASES.c.opened_at)
Index("ix_cases_overdue_id", CASES.c.id, sqlite_where=text("overdue = 1"), postgresql_where=text("overdue"))  # 0012
# A report's period (0010, report_reads.period_cases): open or closed since its start, opened by its end.
Index("ix_cases_closed_at_opened_at", CASES.c.closed_at, CASES.c.opened_at)

# Lead and co-units of each case, for `case list --unit` and unit-scoped reports.
CASE_UNITS = Table(
    "case_units", METADATA,
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True),
    Column("unit", String, primary_key=True, index=True),
    _required("is_lead", Boolean),
    Index("ix_case_units_unit_case_id", "unit", "case_id"),  # a unit's cases in id order, from the index alone
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
Index("ix_audit_events_actor_case_id", AUDIT.c.actor, AUDIT.c.case_id)  # 已办: the cases a user acted on (0011)

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
    _optional("email", String),  # where the notices of the user's unit (or role) are mailed (SPEC §14)
    _optional("mobile", String),  # SPEC §12: the directory's contact number (digits, as given)
    _optional("disabled_at", UTCDateTime()),  # set: the user can neither sign in nor act (SPEC §12)
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


# One notice to one recipient over one channel (SPEC §14): written with the notice, sent later.
DELIVERIES = Table(
    "deliveries", METADATA,
    Column("id", Integer, primary_key=True),
    _required("notice_id", Integer, ForeignKey("notices.id"), index=True),
    _required("case_id", Integer, ForeignKey("cases.id")),
    _required("channel", String),  # email | webhook | dingtalk | wecom | feishu
    _required("recipient", String),  # the unit, role or user told
    _optional("address", String),  # the mailbox, for email
    _required("status", String, default="pending"),  # pending | retrying | sent | failed
    _required("attempts", Integer, default=0),
    _required("next_at", UTCDateTime()),  # not tried again before this instant
    _optional("claimed_by", String),
    _optional("lease_until", UTCDateTime()),
    _required("created_at", UTCDateTime()),
    _optional("finished_at", UTCDateTime()),
    _optional("last_status_code", Integer),
    _optional("last_error", String),
    Index("ix_deliveries_status_next_at", "status", "next_at"),  # what is due: the deliverer's claim
)

# Every try of a delivery, whatever came of it: the proof of when and how a unit was told.
DELIVERY_ATTEMPTS = Table(
    "delivery_attempts", METADATA,
    Column("id", Integer, primary_key=True),
    _required("delivery_id", Integer, ForeignKey("deliveries.id"), index=True),
    _required("attempt", Integer),
    _required("at", UTCDateTime()),
    _required("channel", String),
    _required("recipient", String),
    _optional("status_code", Integer),
    _optional("error", String),
    _required("ok", Boolean),
    _required("duration_ms", Integer),
    _required("node", String),
    Index("ix_delivery_attempts_channel_at", "channel", "at"),  # a robot's sends in the last minute
)

# The office number of a printed 督办通知书 / 催办通知书 (督办〔2027〕12号): given once, kept for reprints.
NOTICE_NUMBERS = Table(
    "notice_numbers", METADATA,
    Column("notice_id", Integer, ForeignKey("notices.id"), primary_key=True, autoincrement=False),
    _required("word", String),
    _required("year", Integer),
    _required("number", Integer),
    _required("issued_at", UTCDateTime()),
    Index("ux_notice_numbers_word_year_number", "word", "year", "number", unique=True),
)

# Sign-in (SPEC §12, duban.access). Secrets are kept apart from the directory's `users` row,
# so nothing that lists users can carry one; a session id and an API token are stored only
# as their SHA-256, a password only as its argon2id hash.
CREDENTIALS = Table(
    "credentials", METADATA,
    Column("user_name", String, ForeignKey("users.name"), primary_key=True),
    _optional("password_hash", String),  # argon2id, PHC string
    _optional("password_set_at", UTCDateTime()),
    _optional("totp_secret", String),  # base32; set: the user signs in with a TOTP code too
    _optional("totp_last_step", Integer),  # the last accepted TOTP time step: a code works once
    _optional("locked_until", UTCDateTime()),  # 5 failures within 15 min lock the user until then
)

# Failed sign-ins of a user not yet counted into a lock (cleared at a lock and a sign-in).
SIGN_IN_FAILURES = Table(
    "sign_in_failures", METADATA,
    Column("id", Integer, primary_key=True),
    _required("user_name", String, index=True),
    _required("at", UTCDateTime()),
)

# Board sessions, server-side: revocable, idle and absolute limits checked at every request.
SESSIONS = Table(
    "sessions", METADATA,
    Column("id", Integer, primary_key=True),  # what audit events name (never the session id)
    _required("id_hash", String),  # SHA-256 of the session id the cookie holds
    _required("user_name", String, index=True),
    _required("created_at", UTCDateTime()),
    _required("last_seen_at", UTCDateTime()),
    _required("expires_at", UTCDateTime()),  # the absolute limit: created + 12 h
    _optional("ended_at", UTCDateTime()),
    _optional("end_reason", String),  # signed_out | idle | expired | disabled
    Index("ux_sessions_id_hash", "id_hash", unique=True),
)

# API tokens for integrations: `Authorization: Bearer TOKEN` acts as the user.
API_TOKENS = Table(
    "api_tokens", METADATA,
    Column("id", Integer, primary_key=True),
    _required("user_name", String, index=True),
    _optional("label", String),
    _required("token_hash", String),  # SHA-256 of the token, printed once at creation
    _required("created_at", UTCDateTime()),
    _optional("expires_at", UTCDateTime()),
    _optional("revoked_at", UTCDateTime()),
    _optional("last_used_at", UTCDateTime()),
    Index("ux_api_tokens_token_hash", "token_hash", unique=True),
)

# Attachments (SPEC §13): the bytes live here, by id; the name is only shown, never a path.
# Their SHA-256 is also in the audit event that added them, which a download checks.
ATTACHMENTS = Table(
    "attachments", METADATA,
    Column("id", Integer, primary_key=True),
    _required("case_id", Integer, ForeignKey("cases.id"), index=True),
    _required("name", String),  # the display name, sanitised (duban.service.attachments)
    _required("content_type", String),
    _required("size", Integer),
    _required("sha256", String),
    _required("content", LargeBinary),
    _required("added_by", String),
    _required("added_at", UTCDateTime()),
)

# 关注 (SPEC §13): who of the office watches which case (`audit verify --state` rebuilds it).
WATCHES = Table(
    "watches", METADATA,
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True, autoincrement=False),
    Column("user_name", String, primary_key=True),
    _required("since", UTCDateTime()),
)

# Read receipts (标为已读): who read a notice, and when.
NOTICE_READS = Table(
    "notice_reads", METADATA,
    Column("notice_id", Integer, ForeignKey("notices.id"), primary_key=True, autoincrement=False),
    Column("reader", String, primary_key=True),
    _required("read_at", UTCDateTime()),
)


# The scheduler's own table (SPEC §6.4): one row per node, for `duban scheduler status`:
# who runs and when each last swept (timers and their claims live in `timers`).
SCHEDULER_NODES = Table(
    "scheduler_nodes", METADATA,
    Column("node", String, primary_key=True),
    _required("host", String),
    _required("pid", Integer),
    _required("started_at", UTCDateTime()),
    _required("interval_seconds", Float),
    _optional("last_sweep_at", UTCDateTime()),
    _required("last_sweep_fired", Integer, default=0),
    _required("fired_total", Integer, default=0),
    _optional("stopped_at", UTCDateTime()),  # set on a clean stop; a killed node leaves it empty
)
