"""Reading what the reports need: cases, the audit events a report looks at, notices.

The report builders (`duban.reports`) are pure; their reads live here. Which audit events
count as ladder rungs and decisions is the reports' business, so the caller names them.

Reports cover every case of an office (hundreds to thousands), so cases are read whole;
only the audit events a report looks at are read (escalations and decisions, or the
full timeline of the cases of an accountability brief).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from duban.engine.model import Case
from duban.storage import audit_log, listing
from duban.storage import repository as repo
from duban.storage.tables import AUDIT, CASE_UNITS, USERS

Events = dict[int, list[dict[str, Any]]]  # per case id, in sequence order (also `duban.reports.facts.Events`)


def cases(conn: Connection, *, unit: str | None = None) -> list[Case]:
    """Every case (or a unit's, as lead or co-unit), in id order."""
    return listing.cases(conn, unit=unit)


def decisions(conn: Connection, actions: Sequence[str], trigger: str, *, before: datetime | None = None) -> Events:
    """Events with one of ``actions`` (the ladder rungs that fired) or fired by ``trigger``
    (the accountability decision) up to ``before``, per case."""
    stmt = select(AUDIT).where(or_(AUDIT.c.action.in_(actions), AUDIT.c.trigger == trigger)).order_by(AUDIT.c.seq)
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
