"""Cases, timers, notices, users and pinned workflow versions, read and written with Core.

`commit_outcome` is the one place an engine step reaches the database: the case row (with
its optimistic version check), the cancelled and armed timers, the audit events and the
notices, all inside the caller's transaction.

The statements every transition runs (load the case and the actor, update the case, cancel
and arm timers, append to the audit chain, list the case's timers) are fixed SQL text run on
the transaction's DBAPI cursor (`duban.storage.sql`): building and executing a Core
statement costs more Python time than SQLite takes to run it (LIBRARIES.md §3.2).

Inside a unit of work (`duban.storage.uow`) the cases read are kept in its identity map
(case id -> the version read and the stored column values), so a case update sets only the
columns that changed since: every index on a column it leaves alone is left alone too. A
case not in one (read in another transaction, or no unit of work open) gets every column
written. Nothing of this is put on the `Case`: the domain object stays plain.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, delete, insert, select

from duban.engine.model import Case, DeadlineState, Notice, Outcome
from duban.errors import ConcurrencyError
from duban.storage import audit_log
from duban.storage.database import SEEN
from duban.storage.sql import (
    IN_CHUNK,
    assignments,
    bind,
    columns,
    execute,
    fetchall,
    fetchone,
    insert_sql,
    marks,
    result,
    rows_by_case,
    select_sql,
)
from duban.storage.tables import CASE_UNITS, CASES, NOTICES, TIMERS, USERS, WORKFLOW_VERSIONS

PENDING, CLAIMED, FIRED, CANCELLED = "pending", "claimed", "fired", "cancelled"


CASE_COLUMNS = columns(CASES)
TIMER_COLUMNS = columns(TIMERS)
_SELECT_TIMERS = select_sql(TIMERS, TIMER_COLUMNS, ' WHERE "case_id" IN ({}) ORDER BY "due_at", "id"')
_SELECT_CASES = select_sql(CASES, CASE_COLUMNS, ' WHERE "id" IN ({}) ORDER BY "id"{}')
# A write transaction's identity map, in its connection's info (`Database.write` opens one for
# every write transaction, `duban.storage.uow.UnitOfWork` on any other connection): case id ->
# (the version it was read or written at, the stored values).
Seen = dict[int, tuple[int, dict[str, Any]]]


def seen_in(conn: Connection) -> Seen | None:
    """The identity map of the unit of work open on `conn`, if any."""
    found: Seen | None = conn.info.get(SEEN)
    return found


# -- cases -------------------------------------------------------------------------
def _case_values(case: Case, now: datetime) -> dict[str, Any]:
    return {
        "workflow": case.workflow, "workflow_version": case.workflow_version, "state": case.state,
        "title": case.title, "lead_unit": case.lead_unit, "co_units": case.co_units,
        "opened_at": case.opened_at, "opened_by": case.opened_by, "due_rule": case.due_rule,
        "due_at": case.due_at, "closed_at": case.closed_at, "escalation_level": case.escalation_level,
        "overdue": case.overdue, "suspended": case.suspended, "deadlines": case.deadlines_json(),
        "data": case.data, "updated_at": now, "next_due_at": case.next_due_at,
    }


def case_from_row(row: Any) -> Case:
    return case_from_mapping(row._mapping)


def case_from_mapping(m: Any) -> Case:
    return Case(
        id=m["id"], workflow=m["workflow"], workflow_version=m["workflow_version"], state=m["state"],
        title=m["title"], lead_unit=m["lead_unit"], co_units=list(m["co_units"]),
        opened_at=m["opened_at"], opened_by=m["opened_by"], due_rule=m["due_rule"], due_at=m["due_at"],
        closed_at=m["closed_at"], escalation_level=m["escalation_level"], suspended=m["suspended"],
        deadlines={k: DeadlineState.from_json(k, v) for k, v in m["deadlines"].items()},
        data=dict(m["data"]), version=m["version"],
    )


def load_case(conn: Connection, case_id: int, *, for_update: bool = False) -> Case | None:
    """Read a case; `for_update` also locks its row until the transaction ends (PostgreSQL)."""
    return load_cases(conn, [case_id], for_update=for_update).get(case_id)


def load_cases(conn: Connection, case_ids: Sequence[int], *, for_update: bool = False) -> dict[int, Case]:
    """Read several cases in id order; `for_update` also locks their rows, in that order, until
    the transaction ends (PostgreSQL). Taking row locks in one global order is what keeps two
    scheduler nodes that fire timers of the same cases from deadlocking."""
    lock = " FOR UPDATE" if for_update and conn.dialect.name == "postgresql" else ""
    ids = sorted(set(case_ids))
    seen = seen_in(conn)
    found: dict[int, Case] = {}
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        for row in fetchall(conn, _SELECT_CASES.format(marks(len(chunk)), lock), chunk):
            stored = result(conn.dialect, CASES, CASE_COLUMNS, row)
            found[stored["id"]] = case_from_mapping(stored)
            if seen is not None:
                seen[stored["id"]] = (stored["version"], _snapshot(stored))
    return found


_UPDATABLE = tuple(k for k in CASE_COLUMNS if k not in ("id", "version", "updated_at"))
_ARM_COLUMNS = ("case_id", "deadline", "rung", "due_at", "approximate", "status")
_ARM = insert_sql(TIMERS, _ARM_COLUMNS)
_NOTICE_COLUMNS = ("case_id", "created_at", "kind", "recipient", "level", "title")
_NOTICE = insert_sql(NOTICES, _NOTICE_COLUMNS)
_CANCEL = ('UPDATE timers SET "status" = ?, "claimed_by" = NULL, "lease_until" = NULL'
           ' WHERE "case_id" = ? AND "deadline" IN ({}) AND "status" IN (?, ?)')


_SNAPSHOT_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)  # one encoder: json.dumps(…) builds one per call


def _snapshot(values: Any) -> dict[str, Any]:
    """The updatable column values, kept to compare against at the next update. `data` is
    kept as its JSON text: the engine changes the case's dict (and what it holds) in place."""
    kept = {k: values[k] for k in _UPDATABLE}
    kept["data"] = _SNAPSHOT_JSON.encode(kept["data"])
    return kept


def _changed(case: Case, values: dict[str, Any], snapshot: dict[str, Any], seen: Seen | None) -> dict[str, Any]:
    """The columns whose values differ from those the case was read with (all of them when
    the identity map does not hold the case at its current version)."""
    stored = seen.get(case.id) if seen is not None and case.id is not None else None
    if stored is None or stored[0] != case.version:
        return {k: values[k] for k in _UPDATABLE}
    before = stored[1]
    return {k: values[k] for k in _UPDATABLE if snapshot[k] != before[k]}


@functools.cache
def _update_sql(names: tuple[str, ...]) -> str:
    return f'UPDATE cases SET {assignments(names)} WHERE "id" = ? AND "version" = ?'


def _update_case(conn: Connection, case: Case, now: datetime) -> None:
    """Write the case's changed columns. The ``WHERE version = ?`` is the optimistic check,
    the only one: no row updated means another transaction moved the case on."""
    values = _case_values(case, now)
    snapshot = _snapshot(values)
    seen = seen_in(conn)
    changed = _changed(case, values, snapshot, seen)
    names = (*changed, "version", "updated_at")
    params = bind(conn.dialect, CASES, names, [*changed.values(), case.version + 1, now])
    if execute(conn, _update_sql(names), [*params, case.id, case.version]) != 1:
        raise ConcurrencyError(f"case {case.id} changed underneath (another action won); read it again and retry")
    case.version += 1
    if seen is not None:
        seen[case.id] = (case.version, snapshot)  # type: ignore[index]


class NoticeWriter(Protocol):
    """Writes notices together with their deliveries (`duban.delivery.outbox.Outbox`)."""

    def wants(self, kinds: Iterable[str]) -> bool: ...

    def write(self, conn: Connection, notices: Sequence[tuple[int, Notice]], rows: list[list[Any]]) -> None: ...


class Batch:
    """The audit events and notices of one or several engine steps in one transaction (a
    scheduler chunk): the events go onto one `audit_log.Chain` (the chain head is read once,
    at the end) and the notices are inserted together; `flush` sends both, and must run
    before the commit. With an `outbox` whose routes want one of the notices' kinds, the
    outbox writes the notices and their deliveries instead (SPEC §14), in this transaction."""

    def __init__(self, conn: Connection, outbox: NoticeWriter | None = None) -> None:
        self.conn = conn
        self.chain = audit_log.Chain(conn)
        self.outbox = outbox
        self._notices: list[list[Any]] = []
        self._raw: list[tuple[int, Notice]] = []  # kept only with an outbox

    def add_notices(self, case_id: int, notices: Sequence[Notice]) -> None:
        self._notices.extend(bind(self.conn.dialect, NOTICES, _NOTICE_COLUMNS,
                                  (case_id, n.at, n.kind, n.recipient, n.level, n.title)) for n in notices)
        if self.outbox is not None:
            self._raw.extend((case_id, n) for n in notices)

    def flush(self) -> None:
        if self._notices:
            if self.outbox is not None and self.outbox.wants(n.kind for _, n in self._raw):
                self.outbox.write(self.conn, self._raw, self._notices)
            else:
                execute(self.conn, _NOTICE, many=self._notices)
            self._notices, self._raw = [], []
        self.chain.flush()  # last: the chain lock is held from here to the commit


def commit_outcome(conn: Connection, out: Outcome, now: datetime, batch: Batch | None = None,
                   outbox: NoticeWriter | None = None) -> Case:
    """Write one engine step. A new case is inserted; an existing one must still be at the
    version it was read at, or ConcurrencyError (exit 5) and the caller's transaction rolls back.
    With a `batch`, the audit events and notices wait in it for its flush; without one, the
    step's notices are written with their deliveries when `outbox` routes them."""
    case = out.case
    dialect = conn.dialect
    if case.id is None:
        values = _case_values(case, now)
        case.id = int(conn.execute(insert(CASES).values(version=1, **values).returning(CASES.c.id)).scalar_one())
        conn.execute(
            insert(CASE_UNITS),
            [{"case_id": case.id, "unit": u, "is_lead": u == case.lead_unit} for u in case.units()],
        )
        seen = seen_in(conn)
        if seen is not None:
            seen[case.id] = (case.version, _snapshot(values))
    elif (out.events and out.watch is None) or out.arm or out.cancel or out.units_changed:
        _update_case(conn, case, now)  # a watch leaves the case (and so its version, an open form) as it is
    if out.watch is not None:
        from duban.storage import watches

        watches.apply(conn, case.id, out.events[0].actor, out.watch, now)
    if out.units_changed:
        conn.execute(delete(CASE_UNITS).where(CASE_UNITS.c.case_id == case.id))
        conn.execute(
            insert(CASE_UNITS),
            [{"case_id": case.id, "unit": u, "is_lead": u == case.lead_unit} for u in case.units()],
        )
    if out.cancel:
        execute(conn, _CANCEL.format(marks(len(out.cancel))), [CANCELLED, case.id, *out.cancel, PENDING, CLAIMED])
    if out.arm:
        execute(conn, _ARM, many=[bind(dialect, TIMERS, _ARM_COLUMNS,
                                       (case.id, t.deadline, t.rung, t.due_at, t.approximate, PENDING))
                                  for t in out.arm])
    writes = batch if batch is not None else Batch(conn, outbox)
    writes.chain.add(case.id, out.events)
    writes.add_notices(case.id, out.notices)
    if batch is None:
        writes.flush()  # a step of its own: its events go onto the chain now, last before the commit
    return case


# -- timers ------------------------------------------------------------------------
def timers_of(conn: Connection, case_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The timers of each case, in due order."""
    return rows_by_case(conn, _SELECT_TIMERS, TIMERS, TIMER_COLUMNS, case_ids)


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
_USER_COLUMNS = columns(USERS)
_SELECT_USER = select_sql(USERS, _USER_COLUMNS, ' WHERE "name" = ?')


def get_user(conn: Connection, name: str) -> dict[str, Any] | None:
    row = fetchone(conn, _SELECT_USER, (name,))
    return result(conn.dialect, USERS, _USER_COLUMNS, row) if row else None


def add_user(conn: Connection, name: str, role: str, unit: str | None, now: datetime) -> None:
    conn.execute(insert(USERS).values(name=name, role=role, unit=unit, created_at=now))


def set_email(conn: Connection, name: str, email: str | None) -> None:
    execute(conn, 'UPDATE users SET "email" = ? WHERE "name" = ?', (email, name))


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
