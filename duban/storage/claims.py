"""Timer claims and scheduler nodes, in SQLAlchemy Core (SPEC §6.3, LIBRARIES.md §2.3).

A node *claims* a batch of due timers (status ``claimed``, ``claimed_by`` = node,
``lease_until`` = now + lease) in one short transaction, then fires each in its own
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

from sqlalchemy import ColumnElement, Connection, and_, bindparam, func, or_, select, update

from duban.engine.model import Case
from duban.engine.service import DueTimer
from duban.storage.repository import load_case
from duban.storage.scheduler_tables import SCHEDULER_NODES
from duban.storage.tables import TIMERS

PENDING, CLAIMED, FIRED = "pending", "claimed", "fired"
_UNFIRED = (PENDING, CLAIMED)


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Due, and either never claimed or claimed under a lease that has run out."""
    return and_(
        TIMERS.c.due_at <= now,
        or_(TIMERS.c.status == PENDING, and_(TIMERS.c.status == CLAIMED, TIMERS.c.lease_until < now)),
    )


# -- claiming ----------------------------------------------------------------------
def claim(conn: Connection, node: str, now: datetime, lease: timedelta, limit: int) -> list[DueTimer]:
    """Claim up to `limit` due timers for `node`, oldest first; returns them in due order."""
    batch = (
        select(TIMERS.c.id)
        .where(_claimable(now))
        .order_by(TIMERS.c.due_at, TIMERS.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # rendered on PostgreSQL only; SQLite has BEGIN IMMEDIATE
    )
    rows = conn.execute(
        update(TIMERS)
        .where(TIMERS.c.id.in_(batch.scalar_subquery()))
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
# Built once with bind parameters: these run several times per fired timer, and building
# a SQLAlchemy statement costs more Python time than the round trip it makes.
_UNFIRED_UP_TO = (
    select(TIMERS.c.id, TIMERS.c.case_id, TIMERS.c.deadline, TIMERS.c.rung, TIMERS.c.due_at,
           TIMERS.c.status, TIMERS.c.claimed_by)
    .where(
        TIMERS.c.case_id == bindparam("case_id"),
        TIMERS.c.status.in_(_UNFIRED),
        TIMERS.c.due_at <= bindparam("now", type_=TIMERS.c.due_at.type),
        or_(TIMERS.c.due_at < bindparam("due_at", type_=TIMERS.c.due_at.type),
            and_(TIMERS.c.due_at == bindparam("due_at", type_=TIMERS.c.due_at.type), TIMERS.c.id <= bindparam("id"))),
    )
    .order_by(TIMERS.c.due_at, TIMERS.c.id)
)
_TAKE_OVER = (
    update(TIMERS)
    .where(TIMERS.c.id == bindparam("timer_id"), TIMERS.c.status.in_(_UNFIRED))
    .values(status=FIRED, fired_at=bindparam("now", type_=TIMERS.c.fired_at.type), lease_until=None)
)


def lock_case(conn: Connection, case_id: int) -> Case | None:
    """Read a case and lock its row until the transaction ends (PostgreSQL; SQLite's write
    lock already serialises).

    Every scheduler firing takes this lock before touching the case's timers, and a person's
    action takes the same row lock with its versioned UPDATE before touching them, so the
    lock order is always case row, then timer rows: no deadlocks, no version clash between
    nodes, and two nodes never fire timers of one case at the same time."""
    return load_case(conn, case_id, for_update=True)


def unfired_up_to(conn: Connection, timer: DueTimer, now: datetime) -> list[tuple[DueTimer, str, str | None]]:
    """The case's due, unfired timers up to and including `timer`, in due order, each with
    its status and claimer: what must fire, oldest first, for the case's ladder to keep its order."""
    rows = conn.execute(
        _UNFIRED_UP_TO, {"case_id": timer.case_id, "now": now, "due_at": timer.due_at, "id": timer.id}
    ).all()
    return [(DueTimer(r.id, r.case_id, r.deadline, r.rung, r.due_at), r.status, r.claimed_by) for r in rows]


def take_over(conn: Connection, timer_id: int, now: datetime) -> bool:
    """Mark an unfired timer fired whoever claimed it (caller holds the case lock and fires it)."""
    return bool(conn.execute(_TAKE_OVER, {"timer_id": timer_id, "now": now}).rowcount == 1)


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
