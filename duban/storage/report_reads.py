"""Reading what the reports need: cases, the audit events a report looks at, notices.

The report builders (`duban.reports`) are pure; their reads live here. Which audit events
count as ladder rungs and decisions is the reports' business, so the caller names them.

A period report reads its period's cases only (issue 16): those opened by its end and not
closed before its start (`period_cases`, migration 0010's index), streamed a batch at a
time, and for each batch only the escalations and decisions of those cases (`decisions`).
A case closed before the period took no step in it: a closed case can no longer move (the
engine refuses), and closing ended its deadlines and cancelled its timers. The
accountability brief reads whole the cases it covers and their full timelines.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select, union_all

from duban.engine.model import Case
from duban.storage import audit_log, listing
from duban.storage import repository as repo
from duban.storage.repository import case_from_row
from duban.storage.tables import AUDIT, CASE_UNITS, CASES, USERS

Events = dict[int, list[dict[str, Any]]]  # per case id, in sequence order (also `duban.reports.facts.Events`)
BATCH = 500  # cases a batch: what a report holds at once (and an IN list of ids every dialect takes)


def cases(conn: Connection, *, unit: str | None = None) -> list[Case]:
    """Every case (or a unit's, as lead or co-unit), in id order."""
    return listing.cases(conn, unit=unit)


def period_cases(conn: Connection, start: datetime | None, end: datetime | None, *,
                 batch: int | None = None) -> Iterator[list[Case]]:
    """The cases opened at or before ``end`` and not closed before ``start`` (a bound None: no
    limit), ``batch`` at a time, in no particular order (the builders need none).

    One statement, streamed (a server-side cursor on PostgreSQL; SQLite's cursor steps
    through its rows), so a report holds a batch of cases, not its period's, and every batch
    comes from one snapshot: a case closing while the report reads is counted once, open or
    closed (batches of keyset queries would each see their own snapshot under PostgreSQL's
    READ COMMITTED). With a start, the statement is two ranges of migration 0010's index
    `cases (closed_at, opened_at)`: the open cases (closed_at IS NULL) and those closed
    since ``start``, opened_at checked in the index; so a report reads the cases open now and
    those closed since its start, never the office's older history.

    ``end`` itself is included: a bulletin asks what stood at its end instant (a case opened
    then and warned then is 黄牌); the builders keep to the instants each fact needs."""
    opened = [CASES.c.opened_at <= end] if end is not None else []
    if start is None:
        stmt: Any = select(CASES).where(*opened)
    else:
        stmt = union_all(select(CASES).where(CASES.c.closed_at.is_(None), *opened),
                         select(CASES).where(CASES.c.closed_at >= start, *opened))
    result = conn.execution_options(stream_results=True, yield_per=batch or BATCH).execute(stmt)
    for rows in result.partitions():
        yield [case_from_row(r) for r in rows]


# What the builders read of a rung or decision (not its hashes): plain tuples zipped to
# dicts, a third of the cost of a Row's mapping for each of the period's events.
_DECISION_KEYS = ("seq", "case_id", "at", "actor", "role", "action", "trigger", "note", "data")


def decisions(conn: Connection, actions: Sequence[str], trigger: str, case_ids: Sequence[int], *,
              before: datetime | None = None) -> Events:
    """Events of the cases ``case_ids`` with one of ``actions`` (the ladder rungs that fired)
    or fired by ``trigger`` (the accountability decision) up to ``before``, per case.
    ``case_ids`` is a batch (`period_cases`): one IN list, served by the audit's case_id index."""
    if not case_ids:
        return {}
    stmt = (select(*(AUDIT.c[k] for k in _DECISION_KEYS))
            .where(AUDIT.c.case_id.in_(case_ids), or_(AUDIT.c.action.in_(actions), AUDIT.c.trigger == trigger))
            .order_by(AUDIT.c.seq))
    if before is not None:
        stmt = stmt.where(AUDIT.c.at < before)
    out: Events = defaultdict(list)
    for row in conn.execute(stmt):
        out[row[1]].append(dict(zip(_DECISION_KEYS, row, strict=True)))
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
