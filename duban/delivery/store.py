"""Deliveries in the database: claimed like timers, every attempt recorded (SPEC §14).

A deliverer *claims* due deliveries (``claimed_by``, ``lease_until``) in one short
transaction — on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so two deliverers take
disjoint batches; on SQLite under ``BEGIN IMMEDIATE`` — then sends them with no
transaction open, then `record`s what happened in one transaction per batch: an attempt
row each, the delivery's new status, and for a final ``sent`` / ``failed`` an audit event
on the notice's case. Only a delivery still claimed by this deliverer is updated (a claim
whose lease ran out may have been taken over and sent again — with the same id — by
another), so each delivery gets one final event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select, update

from duban.engine.model import Event
from duban.storage import audit_log
from duban.storage.sql import assignments, bind, execute, fetchall, insert_sql, marks
from duban.storage.tables import AUDIT, CASES, DELIVERIES, DELIVERY_ATTEMPTS, NOTICES

PENDING, RETRYING, SENT, FAILED = "pending", "retrying", "sent", "failed"
STATUS_LABELS = {PENDING: "待发送", RETRYING: "重试中", SENT: "已送达", FAILED: "送达失败"}
CHANNEL_LABELS = {"email": "邮件", "webhook": "Webhook", "dingtalk": "钉钉", "wecom": "企业微信", "feishu": "飞书"}
SENT_ACTION, FAILED_ACTION = "notice_sent", "notice_failed"


def uid(delivery_id: int) -> str:
    """The stable id of a delivery: the same on every attempt, so a receiver can drop repeats."""
    return f"msg_duban_{delivery_id}"


@dataclass(frozen=True)
class Due:
    """A claimed delivery with what its message needs."""

    id: int
    notice_id: int
    case_id: int
    channel: str
    recipient: str
    address: str | None
    attempts: int
    kind: str
    title: str
    level: int | None
    notice_at: datetime
    case_title: str
    case_due_at: datetime | None
    deadline: str | None = None  # the deadline the notice is about, from its escalation event
    deadline_due_at: datetime | None = None

    @property
    def uid(self) -> str:
        return uid(self.id)


@dataclass(frozen=True)
class Result:
    """One attempt at a delivery (or a deferral: the channel's rate limit was used up)."""

    due: Due
    at: datetime
    ok: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    status: str = SENT  # the delivery's status after this attempt
    next_at: datetime | None = None  # retrying / deferred: not before this
    deferred: bool = False  # not attempted: no attempt row, attempts unchanged

    def recipient_text(self) -> str:
        d = self.due
        return f"{d.recipient} <{d.address}>" if d.address else d.recipient


# -- claiming ----------------------------------------------------------------------
def claim(conn: Connection, node: str, now: datetime, lease: timedelta, limit: int) -> list[Due]:
    """Claim up to `limit` due deliveries for `node`, oldest first: unclaimed ones and those
    whose lease ran out (their deliverer died)."""
    free = or_(DELIVERIES.c.lease_until.is_(None), DELIVERIES.c.lease_until < now)
    found: list[Any] = []
    for status in (PENDING, RETRYING):  # one status at a time: the (status, next_at) index gives them in order
        found += conn.execute(
            select(DELIVERIES.c.id, DELIVERIES.c.next_at)
            .where(DELIVERIES.c.status == status, DELIVERIES.c.next_at <= now, free)
            .order_by(DELIVERIES.c.next_at, DELIVERIES.c.id).limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
    ids = [r.id for r in sorted(found, key=lambda r: (r.next_at, r.id))[:limit]]
    if not ids:
        return []
    conn.execute(update(DELIVERIES).where(DELIVERIES.c.id.in_(ids))
                 .values(claimed_by=node, lease_until=now + lease))
    return details(conn, ids)


def extend(conn: Connection, node: str, ids: Sequence[int], until: datetime) -> int:
    """Renew `node`'s claims on `ids` (those still its own) until `until`: a batch whose sends
    outlast the lease is not taken over and sent twice while it is being sent."""
    return int(conn.execute(update(DELIVERIES).where(DELIVERIES.c.id.in_(ids), DELIVERIES.c.claimed_by == node)
                            .values(lease_until=until)).rowcount)


def details(conn: Connection, ids: Sequence[int]) -> list[Due]:
    """The deliveries with their notices, cases and the deadlines they are about, in id order."""
    d, n, c = DELIVERIES.c, NOTICES.c, CASES.c
    rows = conn.execute(
        select(d.id, d.notice_id, d.case_id, d.channel, d.recipient, d.address, d.attempts, n.kind, n.title,
               n.level, n.created_at, c.title.label("case_title"), c.due_at)
        .join_from(DELIVERIES, NOTICES, n.id == d.notice_id).join(CASES, c.id == d.case_id)
        .where(d.id.in_(ids)).order_by(d.id)
    ).all()
    about = escalations(conn, sorted({r.case_id for r in rows}))
    found = []
    for r in rows:
        deadline, due_at = about.get((r.case_id, r.created_at, r.kind), (None, None))
        found.append(Due(r.id, r.notice_id, r.case_id, r.channel, r.recipient, r.address, r.attempts, r.kind, r.title,
                         r.level, r.created_at, r.case_title, r.due_at, deadline, due_at))
    return found


def escalations(conn: Connection, case_ids: Sequence[int]) -> dict[tuple[int, datetime, str], tuple[str, datetime]]:
    """Per (case, instant, notice kind): the deadline label and due instant the rung was about."""
    found: dict[tuple[int, datetime, str], tuple[str, datetime]] = {}
    if not case_ids:
        return found
    rows = conn.execute(select(AUDIT.c.case_id, AUDIT.c.at, AUDIT.c.note, AUDIT.c.data)
                        .where(AUDIT.c.case_id.in_(case_ids), AUDIT.c.action == "escalate"))
    for r in rows:
        data = r.data or {}
        if data.get("notice") and data.get("deadline_due_at"):
            label = str(r.note).split("：", 1)[0]
            found[(r.case_id, r.at, data["notice"])] = (label, datetime.fromisoformat(data["deadline_due_at"]))
    return found


def release(conn: Connection, node: str) -> int:
    """Give back every claim of `node` (a restart under the same name, or a clean stop)."""
    return int(conn.execute(update(DELIVERIES).where(DELIVERIES.c.claimed_by == node,
                                                     DELIVERIES.c.status.in_((PENDING, RETRYING)))
                            .values(claimed_by=None, lease_until=None)).rowcount)


# -- recording ---------------------------------------------------------------------
_ATTEMPT_COLUMNS = ("delivery_id", "attempt", "at", "channel", "recipient", "status_code", "error", "ok",
                    "duration_ms", "node")
_ATTEMPT = insert_sql(DELIVERY_ATTEMPTS, _ATTEMPT_COLUMNS)
_UPDATE_COLUMNS = ("status", "attempts", "next_at", "finished_at", "last_status_code", "last_error")
_UPDATE = (f'UPDATE deliveries SET {assignments(_UPDATE_COLUMNS)}, "claimed_by" = NULL, "lease_until" = NULL'
           ' WHERE "id" = ?')
_DEFER = 'UPDATE deliveries SET "next_at" = ?, "claimed_by" = NULL, "lease_until" = NULL WHERE "id" = ?'
_STILL_MINE = 'SELECT "id" FROM deliveries WHERE "id" IN ({}) AND "claimed_by" = ?{}'


def still_mine(conn: Connection, node: str, ids: Sequence[int]) -> set[int]:
    """Which of `ids` are still claimed by `node` (locked until the commit on PostgreSQL)."""
    if not ids:
        return set()
    lock = " FOR UPDATE" if conn.dialect.name == "postgresql" else ""
    return {int(r[0]) for r in fetchall(conn, _STILL_MINE.format(marks(len(ids)), lock), (*ids, node))}


def record(conn: Connection, node: str, results: Sequence[Result]) -> list[Result]:
    """Write what a batch of attempts did; returns the final results this call recorded
    (their audit events are written too)."""
    dialect = conn.dialect
    mine = still_mine(conn, node, [r.due.id for r in results])
    tried = [r for r in results if not r.deferred]
    if tried:
        execute(conn, _ATTEMPT, many=[bind(dialect, DELIVERY_ATTEMPTS, _ATTEMPT_COLUMNS, (
            r.due.id, r.due.attempts + 1, r.at, r.due.channel, r.recipient_text(), r.status_code,
            r.error, r.ok, r.duration_ms, node)) for r in tried])
    updates = [[*bind(dialect, DELIVERIES, _UPDATE_COLUMNS, (
        r.status, r.due.attempts + 1, r.next_at or r.at, r.at if r.status in (SENT, FAILED) else None,
        r.status_code, r.error)), r.due.id] for r in tried if r.due.id in mine]
    if updates:
        execute(conn, _UPDATE, many=updates)
    deferred = [[*bind(dialect, DELIVERIES, ("next_at",), (r.next_at,)), r.due.id]
                for r in results if r.deferred and r.due.id in mine]
    if deferred:
        execute(conn, _DEFER, many=deferred)
    finals = [r for r in tried if r.due.id in mine and r.status in (SENT, FAILED)]
    if finals:
        chain = audit_log.Chain(conn)
        for r in finals:
            chain.add(r.due.case_id, [final_event(r)])
        chain.flush()
    return finals


def final_event(r: Result) -> Event:
    """The audit event of a delivery's end: when and how the recipient was (or was not) told."""
    from duban.delivery.messages import addressee

    d = r.due
    how = CHANNEL_LABELS.get(d.channel, d.channel) + (f" {d.address}" if d.address else "")
    who = addressee(d.recipient)
    note = (f"{d.kind}已送达{who}（{how}）" if r.status == SENT
            else f"{d.kind}未能送达{who}（{how}，{d.attempts + 1}次尝试）")
    data: dict[str, Any] = {"notice_id": d.notice_id, "delivery_id": d.id, "delivery_uid": d.uid, "kind": d.kind,
                            "channel": d.channel, "recipient": d.recipient, "address": d.address,
                            "attempts": d.attempts + 1, "status_code": r.status_code, "error": r.error}
    return Event(SENT_ACTION if r.status == SENT else FAILED_ACTION, "system", "system", r.at, note=note, data=data)

