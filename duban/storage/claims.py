"""Timer claims and scheduler nodes, in SQLAlchemy Core (SPEC §6.3, LIBRARIES.md §2.3).

A node *claims* a batch of due timers (status ``claimed``, ``claimed_by`` = node,
``lease_until`` = now + lease) in one short transaction, then fires them a chunk per
transaction. On PostgreSQL the claim selects with ``FOR UPDATE SKIP LOCKED``, so nodes
claiming at the same moment take disjoint batches without waiting for one another; on
SQLite the same statement runs under ``BEGIN IMMEDIATE``, which serialises writers.
A claim is only a reservation: what makes a firing happen once is that marking the timer
fired is conditional (still claimed by this node, or still unfired) and commits together
with the firing. A node that dies keeps its claims until the lease runs out (then any
node may claim them again) or until another node fires a later timer of the same case,
which fires the earlier ones first to keep the case's ladder in due order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, func, select, update

from duban.engine.model import Case
from duban.engine.service import DueTimer
from duban.storage.repository import load_cases
from duban.storage.sql import bind, execute, fetchall, marks, quoted, rows_by_case
from duban.storage.tables import SCHEDULER_NODES, TIMERS

PENDING, CLAIMED, FIRED = "pending", "claimed", "fired"
_UNFIRED = (PENDING, CLAIMED)


# -- claiming ----------------------------------------------------------------------
def _oldest_due(status: str, now: datetime, limit: int, *where: ColumnElement[bool]) -> Select[Any]:
    """The oldest due timers of one status. One status at a time, so the (status, due_at)
    index yields them already in due order and the query stops after `limit` rows: the cost
    follows the batch, not the number due (with ``status IN (…)`` SQLite would sort them all)."""
    return (
        select(TIMERS.c.id, TIMERS.c.due_at)
        .where(TIMERS.c.status == status, TIMERS.c.due_at <= now, *where)
        .order_by(TIMERS.c.due_at, TIMERS.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # rendered on PostgreSQL only; SQLite has BEGIN IMMEDIATE
    )


def claim(conn: Connection, node: str, now: datetime, lease: timedelta, limit: int) -> list[DueTimer]:
    """Claim up to `limit` due timers for `node`, oldest first: pending ones, and claimed ones
    whose lease has run out (their node died or stopped); returns them in due order."""
    found = [*conn.execute(_oldest_due(PENDING, now, limit)),
             *conn.execute(_oldest_due(CLAIMED, now, limit, TIMERS.c.lease_until < now))]
    ids = [r.id for r in sorted(found, key=lambda r: (r.due_at, r.id))[:limit]]
    if not ids:
        return []
    rows = conn.execute(
        update(TIMERS)
        .where(TIMERS.c.id.in_(ids))
        .values(status=CLAIMED, claimed_by=node, lease_until=now + lease)
        .returning(TIMERS.c.id, TIMERS.c.case_id, TIMERS.c.deadline, TIMERS.c.rung, TIMERS.c.due_at)
    ).all()
    timers = [DueTimer(r.id, r.case_id, r.deadline, r.rung, r.due_at) for r in rows]
    return sorted(timers, key=lambda t: (t.due_at, t.id))  # RETURNING has no defined order


def release(conn: Connection, node: str, timer_ids: Sequence[int] | None = None) -> int:
    """Give back claims of `node` (all of them, or those listed) so any node may fire them now."""
    stmt = update(TIMERS).where(TIMERS.c.status == CLAIMED, TIMERS.c.claimed_by == node)
    if timer_ids is not None:
        if not timer_ids:
            return 0
        stmt = stmt.where(TIMERS.c.id.in_(timer_ids))
    return int(conn.execute(stmt.values(status=PENDING, claimed_by=None, lease_until=None)).rowcount)


# -- firing ------------------------------------------------------------------------
_DUE_COLUMNS = ("id", "case_id", "deadline", "rung", "due_at", "status", "claimed_by")
_UNFIRED_DUE = (f'SELECT {quoted(_DUE_COLUMNS)} FROM timers WHERE "case_id" IN ({{}})'
                ' AND "status" IN (?, ?) AND "due_at" <= ? ORDER BY "due_at", "id"')
_TAKE_OVER = ('UPDATE timers SET "status" = ?, "fired_at" = ?, "lease_until" = NULL'
              ' WHERE "id" = ? AND "status" IN (?, ?)')
_MARK_FIRED = ('UPDATE timers SET "status" = ?, "fired_at" = ?, "lease_until" = NULL'
               ' WHERE "id" IN ({}) AND "status" = ? AND "claimed_by" = ? RETURNING "id"')

Unfired = tuple[DueTimer, str, str | None]  # a due, unfired timer with its status and claimer


def lock_cases(conn: Connection, case_ids: Sequence[int]) -> dict[int, Case]:
    """Read cases and lock their rows, in case-id order, until the transaction ends (PostgreSQL;
    SQLite's write lock already serialises).

    Every scheduler firing takes these locks before touching the cases' timers, and a person's
    action takes the same row lock with its versioned UPDATE before touching them, so the
    lock order is always case rows (ascending), then timer rows, then the audit chain: no
    deadlocks, no version clash between nodes, and two nodes never fire timers of one case
    at the same time. The cases go into the transaction's identity map (`duban.storage.uow`), so
    their firings write only the columns they change."""
    return load_cases(conn, case_ids, for_update=True)


def unfired_due(conn: Connection, case_ids: Sequence[int], now: datetime) -> dict[int, list[Unfired]]:
    """Per case, its due and unfired timers in due order: what must fire, oldest first, for
    the case's ladder to keep its order."""
    rows = rows_by_case(conn, _UNFIRED_DUE, TIMERS, _DUE_COLUMNS, case_ids,
                        (PENDING, CLAIMED, bind(conn.dialect, TIMERS, ("due_at",), (now,))[0]))
    return {case_id: [(DueTimer(r["id"], case_id, r["deadline"], r["rung"], r["due_at"]), r["status"], r["claimed_by"])
                      for r in found] for case_id, found in rows.items()}


def up_to(unfired: list[Unfired], timer: DueTimer) -> list[Unfired]:
    """The unfired timers that fall due no later than `timer` (ties by id), `timer` last if listed."""
    return [u for u in unfired if (u[0].due_at, u[0].id) <= (timer.due_at, timer.id)]


def mark_fired(conn: Connection, timer_ids: Sequence[int], node: str, now: datetime) -> set[int]:
    """Mark timers fired that `node` still holds the claim of; returns those it marked (the
    others were fired, taken over or cancelled meanwhile, and must not fire here)."""
    if not timer_ids:
        return set()
    (fired_at,) = bind(conn.dialect, TIMERS, ("fired_at",), (now,))
    rows = fetchall(conn, _MARK_FIRED.format(marks(len(timer_ids))), (FIRED, fired_at, *timer_ids, CLAIMED, node))
    return {row[0] for row in rows}


def take_over(conn: Connection, timer_id: int, now: datetime) -> bool:
    """Mark an unfired timer fired whoever claimed it (caller holds the case lock and fires it)."""
    (fired_at,) = bind(conn.dialect, TIMERS, ("fired_at",), (now,))
    return execute(conn, _TAKE_OVER, (FIRED, fired_at, timer_id, PENDING, CLAIMED)) == 1


# -- nodes -------------------------------------------------------------------------
def _upsert(conn: Connection, values: dict[str, Any], update_keys: Sequence[str]) -> None:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg = pg_insert(SCHEDULER_NODES).values(**values)
        conn.execute(pg.on_conflict_do_update(index_elements=["node"], set_={k: pg.excluded[k] for k in update_keys}))
    else:
        from sqlalchemy.dialects.sqlite import insert as lite_insert

        lite = lite_insert(SCHEDULER_NODES).values(**values)
        conn.execute(lite.on_conflict_do_update(index_elements=["node"], set_={k: lite.excluded[k] for k in update_keys}))


def node_started(conn: Connection, node: str, host: str, pid: int, interval: float, now: datetime) -> None:
    """Record (or re-record, on restart) a node; its fired total carries over."""
    values = {"node": node, "host": host, "pid": pid, "started_at": now, "interval_seconds": interval,
              "last_sweep_at": None, "last_sweep_fired": 0, "fired_total": 0, "stopped_at": None}
    _upsert(conn, values, ["host", "pid", "started_at", "interval_seconds", "stopped_at"])


def node_swept(conn: Connection, node: str, now: datetime, fired: int) -> None:
    conn.execute(
        update(SCHEDULER_NODES)
        .where(SCHEDULER_NODES.c.node == node)
        .values(last_sweep_at=now, last_sweep_fired=fired, fired_total=SCHEDULER_NODES.c.fired_total + fired)
    )


def node_stopped(conn: Connection, node: str, now: datetime) -> None:
    conn.execute(update(SCHEDULER_NODES).where(SCHEDULER_NODES.c.node == node).values(stopped_at=now))


def longest_interval(conn: Connection) -> float | None:
    """The longest sweep interval of the nodes that have not stopped cleanly."""
    value = conn.execute(
        select(func.max(SCHEDULER_NODES.c.interval_seconds)).where(SCHEDULER_NODES.c.stopped_at.is_(None))
    ).scalar_one()
    return float(value) if value is not None else None


# -- status ------------------------------------------------------------------------
def status(conn: Connection, now: datetime, late_after: timedelta, limit: int = 20) -> dict[str, Any]:
    """Counts of pending, due, late and claimed timers; the oldest late ones; claims; nodes.

    Each count uses the (status, due_at) index, so the cost follows the timers due, not
    the number pending."""
    unfired = TIMERS.c.status.in_(_UNFIRED)

    def count(*where: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(TIMERS).where(*where)).scalar_one())

    late_cutoff = now - late_after
    late_rows = conn.execute(
        select(TIMERS.c.id, TIMERS.c.case_id, TIMERS.c.deadline, TIMERS.c.rung, TIMERS.c.due_at,
               TIMERS.c.status, TIMERS.c.claimed_by, TIMERS.c.lease_until)
        .where(unfired, TIMERS.c.due_at <= late_cutoff)
        .order_by(TIMERS.c.due_at, TIMERS.c.id)
        .limit(limit)
    ).all()
    claims = conn.execute(
        select(TIMERS.c.claimed_by, func.count(), func.max(TIMERS.c.lease_until))
        .where(TIMERS.c.status == CLAIMED)
        .group_by(TIMERS.c.claimed_by)
        .order_by(TIMERS.c.claimed_by)
    ).all()
    next_due = conn.execute(
        select(func.min(TIMERS.c.due_at)).where(TIMERS.c.status == PENDING, TIMERS.c.due_at > now)
    ).scalar_one()
    nodes = conn.execute(select(SCHEDULER_NODES).order_by(SCHEDULER_NODES.c.node)).all()
    return {
        "pending": count(TIMERS.c.status == PENDING),
        "claimed": count(TIMERS.c.status == CLAIMED),
        "due": count(unfired, TIMERS.c.due_at <= now),
        "late": count(unfired, TIMERS.c.due_at <= late_cutoff),
        "next_due_at": next_due,
        "oldest_late": [dict(r._mapping) for r in late_rows],
        "claims": [{"node": r[0], "timers": int(r[1]), "lease_until": r[2]} for r in claims],
        "nodes": [dict(r._mapping) for r in nodes],
    }
