"""Reading what the reports need: cases with their pinned workflows, audit events, notices.

Reports cover every case of an office (hundreds to thousands), so cases are read whole;
only the audit events a report looks at are read (escalations and decisions, or the
full timeline of the cases of an accountability brief).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from duban.engine.model import Case
from duban.engine.workflow import Workflow
from duban.reports.facts import HOLD, RUNG_ACTIONS, CaseView
from duban.storage import audit_log
from duban.storage import repository as repo
from duban.storage.tables import AUDIT, CASE_UNITS, USERS

Events = dict[int, list[dict[str, Any]]]  # per case id, in sequence order


def cases(conn: Connection, workflow_of: Callable[[Connection, Case], Workflow], *,
          unit: str | None = None) -> list[CaseView]:
    """Every case (or a unit's, as lead or co-unit), with its pinned workflow."""
    return [CaseView(c, workflow_of(conn, c)) for c in repo.list_cases(conn, unit=unit)]


def decisions(conn: Connection, *, before: datetime | None = None) -> Events:
    """Ladder rungs that fired (escalated or overtaken) and accountability decisions up to ``before``, per case."""
    stmt = select(AUDIT).where(or_(AUDIT.c.action.in_(RUNG_ACTIONS), AUDIT.c.trigger == HOLD)).order_by(AUDIT.c.seq)
    if before is not None:
        stmt = stmt.where(AUDIT.c.at < before)
    out: Events = defaultdict(list)
    for row in conn.execute(stmt):
        out[row.case_id].append(dict(row._mapping))
    return out


def timeline(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    """Every audit event of one case, in sequence order."""
    return list(audit_log.iterate(conn, case_id=case_id))


def notices(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    return repo.list_notices(conn, case_id=case_id)


def unit_known(conn: Connection, unit: str) -> bool:
    """A unit some case names (lead or co-unit) or some user acts for."""
    if conn.execute(select(CASE_UNITS.c.unit).where(CASE_UNITS.c.unit == unit).limit(1)).first() is not None:
        return True
    return conn.execute(select(USERS.c.name).where(USERS.c.unit == unit).limit(1)).first() is not None
