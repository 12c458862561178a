"""Delivery rows, written in the transaction that writes their notices (the outbox pattern).

`repository.Batch` hands its notices here when the office routes one of their kinds
(`Outbox.wants`); otherwise notices are inserted as before and this module costs nothing.
Here the notices get their ids first (SQLite: after the largest id, under the write lock
every SQLite writer holds; PostgreSQL: from the table's sequence), so the notices and their
deliveries go in with one `executemany` each, and a firing's chunk never reads back what it
wrote. Sending happens later, outside this transaction (`duban.delivery.deliverer`).

Who is told (SPEC §14): a route's `to` picks notices by their recipient — ``unit`` (any
notice addressed to a unit), ``leader`` / ``office`` / ``inspector`` (addressed to that
role), ``unit:NAME`` (to that unit only) — or copies them to a named user (``user:NAME``,
once per rung, however many recipients the rung has). Over email each such recipient is
every user of that unit (or role) with a mailbox, one delivery per mailbox; a recipient
with none gets one delivery without an address, which fails at once, visibly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from duban.delivery.settings import NotifySettings
from duban.engine.model import Notice
from duban.storage.sql import bind, run
from duban.storage.tables import DELIVERIES

ROLE_RECIPIENTS = frozenset({"office", "leader", "inspector"})
_COLUMNS = ("notice_id", "case_id", "channel", "recipient", "address", "status", "attempts", "next_at", "created_at")
_INSERT = f"INSERT INTO deliveries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_NOTICE = ('INSERT INTO notices (id, "case_id", "created_at", "kind", "recipient", "level", "title")'
           " VALUES (?, ?, ?, ?, ?, ?, ?)")


@dataclass(frozen=True)
class Target:
    channel: str
    recipient: str  # the unit, role or user told
    address: str | None = None  # the mailbox, for email


class Directory:
    """The users with a mailbox, read once per flush that needs them."""

    def __init__(self, conn: Connection) -> None:
        cursor = run(conn, "SELECT name, role, unit, email FROM users WHERE email IS NOT NULL ORDER BY name")
        try:
            self.rows = [tuple(r) for r in cursor.fetchall()]
        finally:
            cursor.close()

    def mailboxes(self, recipient: str, *, user: bool = False) -> list[str]:
        if user:
            return [e for n, _r, _u, e in self.rows if n == recipient]
        if recipient in ROLE_RECIPIENTS:
            return [e for _n, r, _u, e in self.rows if r == recipient]
        return [e for _n, r, u, e in self.rows if r == "unit" and u == recipient]


def _picked(selector: str, recipient: str) -> str | None:
    """The recipient a route's `to` entry tells about a notice addressed to `recipient`, if any."""
    if selector == "unit":
        return recipient if recipient not in ROLE_RECIPIENTS else None
    if selector in ROLE_RECIPIENTS:
        return recipient if recipient == selector else None
    head, _, name = selector.partition(":")
    return recipient if head == "unit" and name.strip() == recipient else None


class Outbox:
    """The office's routes, applied to the notices a transaction writes."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self.kinds = frozenset(k for r in settings.routes for k in r.kinds)

    def wants(self, kinds: Iterable[str]) -> bool:
        return any(k in self.kinds for k in kinds)

    def targets(self, notice: Notice, first_of_rung: bool, directory: Directory | None) -> list[Target]:
        """The deliveries of one notice, each (channel, recipient, mailbox) once."""
        found: dict[Target, None] = {}
        for route in self.settings.routed(notice.kind):
            for selector in route.to:
                head, _, name = selector.partition(":")
                as_user = head == "user"
                who = name.strip() if as_user else _picked(selector, notice.recipient)
                if who is None or (as_user and not first_of_rung):
                    continue
                for channel in route.via:
                    if channel != "email":
                        found[Target(channel, who)] = None
                        continue
                    assert directory is not None
                    boxes: list[str | None] = [*directory.mailboxes(who, user=as_user)]
                    for box in boxes or [None]:
                        found[Target(channel, who, box)] = None
        return list(found)

    def needs_directory(self, notices: Sequence[tuple[int, Notice]]) -> bool:
        return any("email" in r.via for _, n in notices for r in self.settings.routed(n.kind))

    def write(self, conn: Connection, notices: Sequence[tuple[int, Notice]], rows: list[list[Any]]) -> None:
        """Insert the notices (`rows`, bound as `repository` binds them) and their deliveries."""
        ids = _reserve_ids(conn, len(rows))
        run(conn, _NOTICE, many=[[i, *row] for i, row in zip(ids, rows, strict=True)]).close()
        directory = Directory(conn) if self.needs_directory(notices) else None
        seen_rungs: set[tuple[int, str, datetime]] = set()
        deliveries = []
        for notice_id, (case_id, notice) in zip(ids, notices, strict=True):
            rung = (case_id, notice.kind, notice.at)
            first = rung not in seen_rungs
            seen_rungs.add(rung)
            for t in self.targets(notice, first, directory):
                deliveries.append(bind(conn.dialect, DELIVERIES, _COLUMNS, (
                    notice_id, case_id, t.channel, t.recipient, t.address, "pending", 0, notice.at, notice.at)))
        if deliveries:
            run(conn, _INSERT, many=deliveries).close()


def checked_email(text: str) -> str:
    """A mailbox as `user add --email` takes it: one address, no display name (exit 2 otherwise)."""
    from email.headerregistry import Address

    from duban.errors import UsageError

    value = text.strip()
    try:
        ok = bool(value) and "@" in value and Address(addr_spec=value).addr_spec == value
    except (ValueError, IndexError):
        ok = False
    if not ok:
        raise UsageError(f"--email {text[:200]!r}: not a mailbox address (e.g. fgj@example.gov.cn)")
    return value


def _reserve_ids(conn: Connection, n: int) -> list[int]:
    """Ids for `n` new notices. SQLite: the caller holds the write lock (BEGIN IMMEDIATE), so
    the ids after the largest are ours; PostgreSQL: drawn from the id column's sequence."""
    if conn.dialect.name == "postgresql":
        cursor = run(conn, "SELECT nextval(pg_get_serial_sequence('notices', 'id')) FROM generate_series(1, ?)", (n,))
        try:
            return sorted(int(r[0]) for r in cursor.fetchall())
        finally:
            cursor.close()
    cursor = run(conn, "SELECT COALESCE(MAX(id), 0) FROM notices")
    try:
        top = int(cursor.fetchone()[0])
    finally:
        cursor.close()
    return list(range(top + 1, top + n + 1))
