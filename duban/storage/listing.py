"""Lists of cases asked of the database a page at a time: the ledger and the to-do (issue 16).

Every filter a list has is a WHERE clause here (`duban.engine.ports.CaseQuery`), the page is
a keyset page — by case id (``id > :after ORDER BY id LIMIT n``: the ledger), or by
nearest running deadline then id (`by_due`: the to-do, 已办 and 协办, soonest first, none
running last) — so a list costs what its page costs and not what the office holds: the views
(labels, deadlines, timers) are built by the caller for the page's rows only. Indexes serve
these paths: `case_units (unit, case_id)` for a unit, the open cases by `(workflow, state)`
for a to-do (0009), the open cases by `(next_due_at, id)` for the due order and
`audit_events (actor, case_id)` for 已办 (0011).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Text, and_, cast, exists, func, or_, select, true

from duban.engine.model import Case
from duban.engine.ports import COUNT_CAP, CaseQuery
from duban.storage.repository import case_from_row
from duban.storage.tables import AUDIT, CASE_UNITS, CASES, WORKFLOW_VERSIONS

ESCAPE = "\\"
# `overdue` as the partial index ix_cases_overdue_id's WHERE says it: `overdue = 1` on SQLite
# (which uses a partial index only for a query that names its condition, not a bound value),
# `overdue = true` on PostgreSQL (the same as its `overdue`).
OVERDUE = CASES.c.overdue == true()


def like_escaped(text: str) -> str:
    """`text` as a LIKE pattern matching itself only: %, _ and the escape character escaped."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def _of_unit(unit: str, *, per_row: bool = False) -> Any:
    """The cases `unit` leads or co-handles. `per_row`: asked of each case row as it is read
    (a primary-key probe of `case_units`), for a page that walks an index in order and stops;
    else as the list of the unit's case ids, which SQLite walks in id order itself."""
    if per_row:
        return exists().where(CASE_UNITS.c.case_id == CASES.c.id, CASE_UNITS.c.unit == unit)
    return CASES.c.id.in_(select(CASE_UNITS.c.case_id).where(CASE_UNITS.c.unit == unit))


def conditions(q: CaseQuery, *, states: frozenset[tuple[str, str]] | None, unit: str | None,
               workflow: str | None, per_row: bool = False) -> list[Any]:
    """The WHERE clauses of `q`, with its state, unit and workflow as resolved (`filters.cases`);
    `per_row`: a unit's cases as `_of_unit` says."""
    where: list[Any] = []
    if states is not None:
        where.append(or_(*(and_(CASES.c.workflow == w, CASES.c.state == st) for w, st in sorted(states))))
    if workflow:
        where.append(CASES.c.workflow == workflow)
    if q.overdue:  # as the partial index ix_cases_overdue_id says it (SQLite matches the text)
        where.append(OVERDUE)
    elif q.overdue is not None:
        where.append(CASES.c.overdue == q.overdue)
    if _open_only(q):
        where.append(CASES.c.closed_at.is_(None))
    if unit:
        where.append(_of_unit(unit, per_row=per_row))
    if q.seen_by is not None:
        where.append(_of_unit(q.seen_by, per_row=per_row))
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


def _open_only(q: CaseQuery) -> bool:
    """Whether `q` names open cases only (`closed_at IS NULL` among its conditions): a to-do is."""
    return q.open_only or q.todo is not None


def page(conn: Connection, q: CaseQuery, *, states: frozenset[tuple[str, str]] | None, unit: str | None,
         workflow: str | None, count: bool = False) -> tuple[list[Case], int | None]:
    """The cases `q` names after `q.after`, in id order (with `by_due`: after `q.after_due`,
    in due order), at most `q.limit`; with `count`, how many match in all (the same WHERE,
    without the page), counted up to `COUNT_CAP + 1`."""
    def where_of(per_row: bool) -> list[Any]:
        where = conditions(q, states=states, unit=unit, workflow=workflow, per_row=per_row)
        if q.after is not None:
            where.append(CASES.c.id > q.after)
        return where

    # a page that walks an index in order and stops (overdue by id, the open cases by due):
    # each row's unit checked as it is read, not the unit's every case id listed first
    where = where_of(per_row=bool(q.overdue and not q.by_due))
    if q.by_due:
        found = _by_due(conn, q, where, where_of(per_row=_open_only(q)))
    else:
        in_order = select(CASES).where(*where).order_by(CASES.c.id)
        if q.overdue:  # SQLite would walk the unit's cases from the oldest, none of them overdue
            in_order = in_order.with_hint(CASES, f"INDEXED BY {OVERDUE_BY_ID}", "sqlite")
        found = _rows(conn, in_order, q.limit)
    total = None
    if count:
        matching = select(CASES.c.id).where(*where).limit(COUNT_CAP + 1).subquery()
        total = int(conn.execute(select(func.count()).select_from(matching)).scalar_one())
    return found, total


def _rows(conn: Connection, stmt: Any, limit: int | None) -> list[Case]:
    return [case_from_row(r) for r in conn.execute(stmt if limit is None else stmt.limit(limit))]


OPEN_BY_DUE = "ix_cases_open_next_due_at"  # storage.tables: (next_due_at, id) WHERE closed_at IS NULL
OVERDUE_BY_ID = "ix_cases_overdue_id"  # storage.tables: (id) WHERE overdue


def _by_due(conn: Connection, q: CaseQuery, where: list[Any], walked: list[Any]) -> list[Case]:
    """The due order in two parts: the cases with a running deadline by (next_due_at, id),
    then those with none, by id (the second asked only when the first leaves the page
    short). Each is an order an index can give (`ix_cases_open_next_due_at` on open cases);
    one ORDER BY … NULLS LAST is not (an index keeps NULLs at one end, which end differs by
    database). On open cases the first part walks that index and stops at the page; SQLite,
    with no statistics, would filter on `closed_at` by another index and sort every open
    candidate instead (1 s for the office's page at 1M cases, 0.4 ms walking the index), so
    it is told which index to use. PostgreSQL, with statistics, picks it by itself. `walked`:
    the same WHERE for the first part, a unit's cases checked row by row (`_of_unit`)."""
    due, after = CASES.c.next_due_at, q.after_due
    found: list[Case] = []
    if after is None or after[0] is not None:
        dated = select(CASES).where(*walked, due.is_not(None))
        if _open_only(q):  # the open cases in this order: an index SQLite would not pick
            dated = dated.with_hint(CASES, f"INDEXED BY {OPEN_BY_DUE}", "sqlite")
        if after is not None:
            dated = dated.where(or_(due > after[0], and_(due == after[0], CASES.c.id > after[1])))
        found = _rows(conn, dated.order_by(due, CASES.c.id), q.limit)
    if q.limit is None or len(found) < q.limit:
        undated = select(CASES).where(*where, due.is_(None))
        if after is not None and after[0] is None:
            undated = undated.where(CASES.c.id > after[1])
        found += _rows(conn, undated.order_by(CASES.c.id), None if q.limit is None else q.limit - len(found))
    return found


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
