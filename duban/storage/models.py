"""The database schema, as SQLModel tables: what alembic's migrations are made from.

SQLModel declares the schema (LIBRARIES.md §3): `duban/storage/migrations/env.py` compares
the database against this metadata, and new migrations are generated from it. The code
reads and writes through the same tables declared in SQLAlchemy Core
(`duban.storage.tables`), which does not import sqlmodel — see there for why;
tests/unit/test_tables.py checks the two declarations agree. Instants are `UTCDateTime`
(aware, stored in UTC).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel


class CaseRow(SQLModel, table=True):
    __tablename__ = "cases"
    id: int | None = Field(default=None, primary_key=True)
    workflow: str = Field(index=True)
    workflow_version: int
    state: str = Field(index=True)
    title: str
    lead_unit: str = Field(index=True)
    co_units: list[str] = Field(default_factory=list, sa_type=JSON)
    opened_at: datetime
    opened_by: str
    due_rule: str | None = None
    due_at: datetime | None = Field(default=None, index=True)
    closed_at: datetime | None = None
    escalation_level: int = 0
    overdue: bool = False
    suspended: bool = False
    deadlines: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    version: int = 1  # optimistic concurrency: every update checks and bumps it
    updated_at: datetime


class CaseUnitRow(SQLModel, table=True):
    """Lead and co-units of each case, for `case list --unit` and unit-scoped reports."""

    __tablename__ = "case_units"
    case_id: int = Field(foreign_key="cases.id", primary_key=True)
    unit: str = Field(primary_key=True, index=True)
    is_lead: bool


class TimerRow(SQLModel, table=True):
    """A durable timer: one rung of one deadline's ladder on one case."""

    __tablename__ = "timers"
    __table_args__ = (
        Index("ix_timers_status_due_at", "status", "due_at"),  # what is due: the sweep's claim
        Index("ix_timers_case_id_due_at", "case_id", "due_at"),  # what is due on these cases (status left out:
        # claiming and firing change it, and would then rewrite this index too)
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    deadline: str
    rung: int
    due_at: datetime
    approximate: bool = False
    status: str = "pending"  # pending | claimed | fired | cancelled
    claimed_by: str | None = None
    lease_until: datetime | None = None
    fired_at: datetime | None = None


class AuditEventRow(SQLModel, table=True):
    """One link of the audit chain. Append-only: never updated, never deleted."""

    __tablename__ = "audit_events"
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    case_id: int | None = Field(default=None, index=True)
    at: datetime
    actor: str
    role: str
    action: str
    trigger: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    note: str = ""
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    prev_hash: str
    hash: str


class CheckpointRow(SQLModel, table=True):
    """A signed checkpoint of the audit log (SPEC §15) and the Merkle frontier at its size."""

    __tablename__ = "checkpoints"
    id: int | None = Field(default=None, primary_key=True)
    size: int = Field(index=True)  # events covered: seq 1 … size
    root: str  # the Merkle root (hex)
    head_hash: str | None = None  # the hash of event `size` (the next checkpoint starts after it)
    frontier: list[str] = Field(default_factory=list, sa_type=JSON)  # right-edge subtree hashes (hex)
    origin: str
    key_id: str  # the signing key's note key ID (hex)
    fingerprint: str  # SHA-256 of its public key
    signed_at: datetime
    note: str  # the signed note, as mailed


class AuditExportRow(SQLModel, table=True):
    """An audit export made (SPEC §15): the scheduler signs a checkpoint after each."""

    __tablename__ = "audit_exports"
    id: int | None = Field(default=None, primary_key=True)
    exported_at: datetime
    format: str
    rows: int
    head_seq: int | None = None  # the chain head when exported


class NoticeRow(SQLModel, table=True):
    """The notices outbox: 催办通知, 督办通知, 通报 … to a unit or a role."""

    __tablename__ = "notices"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    created_at: datetime
    kind: str
    recipient: str = Field(index=True)
    level: int | None = None
    title: str


class UserRow(SQLModel, table=True):
    """The directory: who may act, in which role and unit."""

    __tablename__ = "users"
    name: str = Field(primary_key=True)
    role: str
    unit: str | None = None
    created_at: datetime
    email: str | None = None  # where the notices of the user's unit (or role) are mailed (SPEC §14)
    mobile: str | None = None  # SPEC §12: the directory's contact number (digits, as given)
    disabled_at: datetime | None = None  # set: the user can neither sign in nor act (SPEC §12)


class UnitRow(SQLModel, table=True):
    """The unit directory (SPEC §16): every unit a case or a user may name."""

    __tablename__ = "units"
    name: str = Field(primary_key=True)
    created_at: datetime


class UnitNameRow(SQLModel, table=True):
    """A unit's former names (曾用名), each pointing at the unit's current name."""

    __tablename__ = "unit_names"
    name: str = Field(primary_key=True)
    unit: str = Field(index=True)
    renamed_at: datetime


class CalendarDayRow(SQLModel, table=True):
    """A day that differs from Monday–Friday: a holiday, or a make-up working day (调休)."""

    __tablename__ = "calendar_days"
    day: date = Field(primary_key=True)
    kind: str  # holiday | workday
    name: str = ""
    source: str = ""


class CalendarYearRow(SQLModel, table=True):
    """A year whose official schedule is loaded; other years count weekends only."""

    __tablename__ = "calendar_years"
    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    source: str
    loaded_at: datetime


class WorkflowVersionRow(SQLModel, table=True):
    """A workflow definition pinned the first time a case used it, so it can never drift."""

    __tablename__ = "workflow_versions"
    name: str = Field(primary_key=True)
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    fingerprint: str
    source: str
    body: dict[str, Any] = Field(sa_type=JSON)
    pinned_at: datetime


class DeliveryRow(SQLModel, table=True):
    """One notice to one recipient over one channel (SPEC §14): written with the notice, sent later."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_status_next_at", "status", "next_at"),  # what is due: the deliverer's claim
    )
    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notices.id", index=True)
    case_id: int = Field(foreign_key="cases.id")
    channel: str  # email | webhook | dingtalk | wecom | feishu
    recipient: str  # the unit, role or user told
    address: str | None = None  # the mailbox, for email
    status: str = "pending"  # pending | retrying | sent | failed
    attempts: int = 0
    next_at: datetime  # not tried again before this instant
    claimed_by: str | None = None
    lease_until: datetime | None = None
    created_at: datetime
    finished_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None


class DeliveryAttemptRow(SQLModel, table=True):
    """Every try of a delivery, whatever came of it: the proof of when and how a unit was told."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        Index("ix_delivery_attempts_channel_at", "channel", "at"),  # a robot's sends in the last minute
    )
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="deliveries.id", index=True)
    attempt: int
    at: datetime
    channel: str
    recipient: str
    status_code: int | None = None
    error: str | None = None
    ok: bool
    duration_ms: int
    node: str


class NoticeNumberRow(SQLModel, table=True):
    """The office number of a printed 督办通知书 / 催办通知书 (督办〔2027〕12号): given once, kept for reprints."""

    __tablename__ = "notice_numbers"
    __table_args__ = (
        Index("ux_notice_numbers_word_year_number", "word", "year", "number", unique=True),
    )
    notice_id: int = Field(foreign_key="notices.id", primary_key=True, sa_column_kwargs={"autoincrement": False})
    word: str
    year: int
    number: int
    issued_at: datetime

class CredentialRow(SQLModel, table=True):
    """A user's sign-in secrets (SPEC §12), apart from the directory row: argon2id hash, TOTP."""

    __tablename__ = "credentials"
    user_name: str = Field(foreign_key="users.name", primary_key=True)
    password_hash: str | None = None
    password_set_at: datetime | None = None
    totp_secret: str | None = None
    totp_last_step: int | None = None
    locked_until: datetime | None = None


class SignInFailureRow(SQLModel, table=True):
    """A failed sign-in not yet counted into a lock."""

    __tablename__ = "sign_in_failures"
    id: int | None = Field(default=None, primary_key=True)
    user_name: str = Field(index=True)
    at: datetime


class SessionRow(SQLModel, table=True):
    """A board session, server-side; the cookie's id is stored only as its SHA-256."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ux_sessions_id_hash", "id_hash", unique=True),)
    id: int | None = Field(default=None, primary_key=True)
    id_hash: str
    user_name: str = Field(index=True)
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None


class ApiTokenRow(SQLModel, table=True):
    """An API token, stored only as its SHA-256."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ux_api_tokens_token_hash", "token_hash", unique=True),)
    id: int | None = Field(default=None, primary_key=True)
    user_name: str = Field(index=True)
    label: str | None = None
    token_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class AttachmentRow(SQLModel, table=True):
    """An attachment's bytes, by id (a file name never becomes a path); SHA-256 also in its audit event."""

    __tablename__ = "attachments"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    name: str
    content_type: str
    size: int
    sha256: str
    content: bytes
    added_by: str
    added_at: datetime


class WatchRow(SQLModel, table=True):
    """关注: an office user watching a case."""

    __tablename__ = "watches"
    case_id: int = Field(foreign_key="cases.id", primary_key=True, sa_column_kwargs={"autoincrement": False})
    user_name: str = Field(primary_key=True)
    since: datetime


class NoticeReadRow(SQLModel, table=True):
    """A read receipt: who read a notice and when (标为已读)."""

    __tablename__ = "notice_reads"
    notice_id: int = Field(foreign_key="notices.id", primary_key=True, sa_column_kwargs={"autoincrement": False})
    reader: str = Field(primary_key=True)
    read_at: datetime


# Tables declared in their own modules join the same metadata (alembic compares all of it).
import duban.storage.scheduler_tables  # noqa: E402, F401
