"""Lists of cases asked of the database a page at a time: the ledger and the to-do (issue 16).

Every filter a list has is a WHERE clause here (`duban.engine.ports.CaseQuery`), the page is
a keyset page — by case id (``id > :after ORDER BY id LIMIT n``: the ledger), or by due
nearest running deadline then id (`by_due`: the to-do, 已办 and 协办, soonest first, none
running last) — so a list costs what its page costs and not what the office holds: the views
(labels, deadlines, timers) are built by the caller for the page's rows only. Indexes serve
these paths: `case_units (unit, case_id)` for a unit, the open cases by `(workflow, state)`
for a to-do (0009), the open cases by `(next_due_at, id)` for the due order and
`audit_events (actor, case_id)` for 已办 (0011).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, and_, cast, func, or_, select

from duban.engine.model import Case
from duban.engine.ports import CaseQuery
from duban.storage.repository import case_from_row
from duban.storage.tables import AUDIT, CASE_UNITS, CASES, WORKFLOW_VERSIONS

ESCAPE = "\\"


def like_escaped(text: str) -> str:
    """`text` as a LIKE pattern matching itself only: %, _ and the escape character escaped."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def _of_unit(unit: str) -> Any:
    return CASES.c.id.in_(select(CASE_UNITS.c.case_id).where(CASE_UNITS.c.unit == unit))


def conditions(q: CaseQuery, *, states: frozenset[tuple[str, str]] | None, unit: str | None,
               workflow: str | None) -> list[Any]:
    """The WHERE clauses of `q`, with its state, unit and workflow as resolved (`filters.cases`)."""
    where: list[Any] = []
    if states is not None:
        where.append(or_(*(and_(CASES.c.workflow == w, CASES.c.state == st) for w, st in sorted(states))))
    if workflow:
        where.append(CASES.c.workflow == workflow)
    if q.overdue is not None:
        where.append(CASES.c.overdue == q.overdue)
    if q.open_only or q.todo is not None:
        where.append(CASES.c.closed_at.is_(None))
    if unit:
        where.append(_of_unit(unit))
    if q.seen_by is not None:
        where.append(_of_unit(q.seen_by))
    if q.level is not None:
        where.append(CASES.c.escalation_level == q.level)
    if q.due_before is not None:
        where.append(and_(CASES.c.due_at.is_not(None), CASES.c.due_at < q.due_before))
    if q.title:
        where.append(CASES.c.title.like(f"%{like_escaped(q.title)}%", escape=ESCAPE))
    if q.co_of is not None:
        where.append(CASES.c.id.in_(select(CASE_UNITS.c.case_id).where(CASE_UNITS.c.unit == q.co_of,
                                                                     CASE_UNITS.c.is_lead.is_(False))))
    if q.acted_by is not None:
        where.append(CASES.c.id.in_(select(AUDIT.c.case_id).where(AUDIT.c.actor == q.acted_by,
                                                                 AUDIT.c.case_id.is_not(None))))
    if q.todo is not None:
        # a suspended case offers none of its workflow's own triggers (`engine.allowed`)
        pairs = [and_(CASES.c.workflow == w, CASES.c.state == st) for w, st in sorted(q.todo)]
        either = [and_(or_(*pairs), CASES.c.suspended.is_(False))] if pairs else []
        if q.lead_todo and q.seen_by is not None:  # a step only the lead unit takes (签收, 报告 …)
            lead = [and_(CASES.c.workflow == w, CASES.c.state == st) for w, st in sorted(q.lead_todo)]
            either.append(and_(or_(*lead), CASES.c.suspended.is_(False), CASES.c.lead_unit == q.seen_by))
        if q.suspended:
            either.append(CASES.c.suspended.is_(True))
        if q.data_key is not None:  # a superset (the key's name as text anywhere): the caller checks each case
            either.append(cast(CASES.c.data, Text).like(f'%"{like_escaped(q.data_key)}"%', escape=ESCAPE))
        where.append(or_(*either) if either else CASES.c.id.is_(None))
    return where


def page(conn: Connection, q: CaseQuery, *, states: frozenset[tuple[str, str]] | None, unit: str | None,
         workflow: str | None, count: bool = False) -> tuple[list[Case], int | None]:
    """The cases `q` names after `q.after`, in id order (with `by_due`: after `q.after_due`,
    in due order), at most `q.limit`; with `count`, how many match in all (the same WHERE,
    without the page)."""
    where = conditions(q, states=states, unit=unit, workflow=workflow)
    if q.by_due:
        due = next_due(conn.dialect.name)
        stmt = select(CASES).where(*where).order_by(due.asc().nulls_last(), CASES.c.id)
        if q.after_due is not None:
            stmt = stmt.where(after_due(due, conn.dialect.name, *q.after_due))
    else:
        stmt = select(CASES).where(*where).order_by(CASES.c.id)
    if q.after is not None:
        stmt = stmt.where(CASES.c.id > q.after)
    if q.limit is not None:
        stmt = stmt.limit(q.limit)
    found = [case_from_row(r) for r in conn.execute(stmt)]
    total = None
    if count:
        total = int(conn.execute(select(func.count()).select_from(CASES).where(*where)).scalar_one())
    return found, total


# The board's "nearest deadline first" (SPEC §13, `web.cards.due_sort_key`): of an open case's
# deadlines that run, the one falling due first; a case with none running (or closed) last.
# Stored with the case (`cases.next_due_at`, migration 0011), so the order is a column's.
def next_due(dialect: str) -> Any:
    """A case's nearest running deadline, as an SQL expression (`cases.next_due_at`)."""
    return CASES.c.next_due_at


def after_due(due: Any, dialect: str, at: datetime | None, case_id: int) -> Any:
    """The cases after (at, case_id) in the due order: a later nearest deadline, the same one
    and a higher id, or none running (those come last, in id order)."""
    if at is None:
        return and_(due.is_(None), CASES.c.id > case_id)
    return or_(due > at, and_(due == at, CASES.c.id > case_id), due.is_(None))


def cases(conn: Connection, *, unit: str | None = None, workflow: str | None = None, overdue: bool | None = None,
          open_only: bool = False, states: Collection[tuple[str, str]] | None = None) -> list[Case]:
    """Every case matching, in id order (`states`: only those in one of these (workflow,
    state) pairs) — a list people print whole, or that a report or calendar import walks."""
    return page(conn, CaseQuery(overdue=overdue, open_only=open_only),
                states=None if states is None else frozenset(states), unit=unit, workflow=workflow)[0]


def versions(conn: Connection) -> list[tuple[str, int]]:
    """Every pinned (workflow, version), in order."""
    rows = conn.execute(select(WORKFLOW_VERSIONS.c.name, WORKFLOW_VERSIONS.c.version)
                        .order_by(WORKFLOW_VERSIONS.c.name, WORKFLOW_VERSIONS.c.version))
    return [(r.name, r.version) for r in rows]
