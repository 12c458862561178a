"""Cases, timers, notices, users and pinned workflow versions, read and written with Core.

`commit_outcome` is the one place an engine step reaches the database: the case row (with
its optimistic version check), the cancelled and armed timers, the audit events and the
notices, all inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from duban.engine.model import Case, DeadlineState, Outcome
from duban.errors import ConcurrencyError
from duban.storage import audit_log
from duban.storage.tables import CASE_UNITS, CASES, NOTICES, TIMERS, USERS, WORKFLOW_VERSIONS

PENDING, CLAIMED, FIRED, CANCELLED = "pending", "claimed", "fired", "cancelled"


# -- cases -------------------------------------------------------------------------
def _case_values(case: Case, now: datetime) -> dict[str, Any]:
    return {
        "workflow": case.workflow, "workflow_version": case.workflow_version, "state": case.state,
        "title": case.title, "lead_unit": case.lead_unit, "co_units": case.co_units,
        "opened_at": case.opened_at, "opened_by": case.opened_by, "due_rule": case.due_rule,
        "due_at": case.due_at, "closed_at": case.closed_at, "escalation_level": case.escalation_level,
        "overdue": case.overdue, "suspended": case.suspended, "deadlines": case.deadlines_json(),
        "data": case.data, "updated_at": now,
    }


def case_from_row(row: Any) -> Case:
    m = row._mapping
    return Case(
        id=m["id"], workflow=m["workflow"], workflow_version=m["workflow_version"], state=m["state"],
        title=m["title"], lead_unit=m["lead_unit"], co_units=list(m["co_units"]),
        opened_at=m["opened_at"], opened_by=m["opened_by"], due_rule=m["due_rule"], due_at=m["due_at"],
        closed_at=m["closed_at"], escalation_level=m["escalation_level"], suspended=m["suspended"],
        deadlines={k: DeadlineState.from_json(k, v) for k, v in m["deadlines"].items()},
        data=dict(m["data"]), version=m["version"],
    )


def load_case(conn: Connection, case_id: int) -> Case | None:
    row = conn.execute(select(CASES).where(CASES.c.id == case_id)).first()
    return case_from_row(row) if row else None


def commit_outcome(conn: Connection, out: Outcome, now: datetime) -> Case:
    """Write one engine step. A new case is inserted; an existing one must still be at the
    version it was read at, or ConcurrencyError (exit 5) and the caller's transaction rolls back."""
    case = out.case
    values = _case_values(case, now)
    if case.id is None:
        case.id = int(conn.execute(insert(CASES).values(version=1, **values).returning(CASES.c.id)).scalar_one())
        conn.execute(
            insert(CASE_UNITS),
            [{"case_id": case.id, "unit": u, "is_lead": u == case.lead_unit} for u in case.units()],
        )
    elif out.events or out.arm or out.cancel or out.units_changed:
        done = conn.execute(
            update(CASES)
            .where(CASES.c.id == case.id, CASES.c.version == case.version)
            .values(version=case.version + 1, **values)
        )
        if done.rowcount != 1:
            raise ConcurrencyError(f"case {case.id} changed underneath (another action won); read it again and retry")
        case.version += 1
    if out.units_changed:
        conn.execute(delete(CASE_UNITS).where(CASE_UNITS.c.case_id == case.id))
        conn.execute(
            insert(CASE_UNITS),
            [{"case_id": case.id, "unit": u, "is_lead": u == case.lead_unit} for u in case.units()],
        )
    if out.cancel:
        conn.execute(
            update(TIMERS)
            .where(TIMERS.c.case_id == case.id, TIMERS.c.deadline.in_(out.cancel), TIMERS.c.status.in_((PENDING, CLAIMED)))
            .values(status=CANCELLED, claimed_by=None, lease_until=None)
        )
    if out.arm:
        conn.execute(
            insert(TIMERS),
            [{"case_id": case.id, "deadline": t.deadline, "rung": t.rung, "due_at": t.due_at,
              "approximate": t.approximate, "status": PENDING} for t in out.arm],
        )
    audit_log.append(conn, case.id, out.events)
    if out.notices:
        conn.execute(
            insert(NOTICES),
            [{"case_id": case.id, "created_at": n.at, "kind": n.kind, "recipient": n.recipient,
              "level": n.level, "title": n.title} for n in out.notices],
        )
    return case


def list_cases(
    conn: Connection, *, state: str | None = None, unit: str | None = None,
    workflow: str | None = None, overdue: bool | None = None, open_only: bool = False,
) -> list[Case]:
    stmt = select(CASES).order_by(CASES.c.id)
    if state:
        stmt = stmt.where(CASES.c.state == state)
    if workflow:
        stmt = stmt.where(CASES.c.workflow == workflow)
    if overdue is not None:
        stmt = stmt.where(CASES.c.overdue == overdue)
    if open_only:
        stmt = stmt.where(CASES.c.closed_at.is_(None))
    if unit:
        stmt = stmt.where(CASES.c.id.in_(select(CASE_UNITS.c.case_id).where(CASE_UNITS.c.unit == unit)))
    return [case_from_row(r) for r in conn.execute(stmt)]


# -- timers ------------------------------------------------------------------------
def timers_of(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    stmt = select(TIMERS).where(TIMERS.c.case_id == case_id).order_by(TIMERS.c.due_at, TIMERS.c.id)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def mark_fired(conn: Connection, timer_id: int, now: datetime, node: str | None = None) -> bool:
    """Mark a timer fired if it is still ours to fire; False if someone else fired or cancelled it."""
    ours = TIMERS.c.status == PENDING if node is None else and_(TIMERS.c.status == CLAIMED, TIMERS.c.claimed_by == node)
    done = conn.execute(
        update(TIMERS).where(TIMERS.c.id == timer_id, ours).values(status=FIRED, fired_at=now, lease_until=None)
    )
    return done.rowcount == 1


def approximate_pending(conn: Connection) -> dict[int, set[str]]:
    """Deadlines (per case) that still have pending timers computed without calendar data."""
    rows = conn.execute(
        select(TIMERS.c.case_id, TIMERS.c.deadline).where(TIMERS.c.status == PENDING, TIMERS.c.approximate.is_(True))
    )
    found: dict[int, set[str]] = {}
    for r in rows:
        found.setdefault(r.case_id, set()).add(r.deadline)
    return found


# -- notices -----------------------------------------------------------------------
def list_notices(conn: Connection, *, unit: str | None = None, case_id: int | None = None) -> list[dict[str, Any]]:
    stmt = select(NOTICES).order_by(NOTICES.c.id)
    if unit:
        stmt = stmt.where(NOTICES.c.recipient == unit)
    if case_id is not None:
        stmt = stmt.where(NOTICES.c.case_id == case_id)
    return [dict(r._mapping) for r in conn.execute(stmt)]


# -- users -------------------------------------------------------------------------
def get_user(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(USERS).where(USERS.c.name == name)).first()
    return dict(row._mapping) if row else None


def add_user(conn: Connection, name: str, role: str, unit: str | None, now: datetime) -> None:
    conn.execute(insert(USERS).values(name=name, role=role, unit=unit, created_at=now))


def list_users(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(USERS).order_by(USERS.c.name))]


# -- pinned workflow versions ------------------------------------------------------
def pinned_workflow(conn: Connection, name: str, version: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(WORKFLOW_VERSIONS).where(WORKFLOW_VERSIONS.c.name == name, WORKFLOW_VERSIONS.c.version == version)
    ).first()
    return dict(row._mapping) if row else None


def pin_workflow(conn: Connection, name: str, version: int, fingerprint: str, source: str,
                 body: dict[str, Any], now: datetime) -> None:
    conn.execute(
        insert(WORKFLOW_VERSIONS).values(
            name=name, version=version, fingerprint=fingerprint, source=source, body=body, pinned_at=now
        )
    )
