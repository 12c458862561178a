"""Attachments to a case (SPEC §13): at most 20 MB, kept by id with their SHA-256.

The bytes are stored in the `attachments` table, never under a name a client chose: the
name given is only shown (its last path part, control characters removed), so
`../../etc/passwd` is the harmless display name `passwd`. The audit event that added a file
(`attached`) holds its SHA-256, size and name; a download recomputes the hash of the stored
bytes and compares it with that event, whose hash the audit chain protects, so a file
changed in the database is refused rather than served.
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import insert, select

from duban.engine.model import Event
from duban.errors import IntegrityError, NotFoundError, PermissionDeniedError, RefusedError, UsageError
from duban.storage import audit_log
from duban.storage.tables import ATTACHMENTS

if TYPE_CHECKING:
    from duban.service.app import App

MAX_BYTES = 20 * 1024 * 1024
CHUNK = 1024 * 1024
ROLES = ("office", "unit")
_META = (ATTACHMENTS.c.id, ATTACHMENTS.c.case_id, ATTACHMENTS.c.name, ATTACHMENTS.c.content_type,
         ATTACHMENTS.c.size, ATTACHMENTS.c.sha256, ATTACHMENTS.c.added_by, ATTACHMENTS.c.added_at)


class TooLargeError(UsageError):
    """An attachment over MAX_BYTES (HTTP 413)."""


def display_name(raw: str | None) -> str:
    """What a file is called on the page: the last part of the name given, printable only."""
    text = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return text[:200] or "附件"


def read_bounded(stream: BinaryIO, limit: int = MAX_BYTES) -> bytes:
    """The stream's bytes, read a chunk at a time and refused as soon as they pass `limit`."""
    parts, seen = [], 0
    while chunk := stream.read(CHUNK):
        seen += len(chunk)
        if seen > limit:
            raise TooLargeError(f"附件超过 {limit // (1024 * 1024)} MB 的上限：未保存")
        parts.append(chunk)
    return b"".join(parts)


def add(app: App, case_id: int, actor: str | None, name: str | None, content_type: str | None,
        stream: BinaryIO) -> dict[str, Any]:
    """Store a file on a case as `actor` (the office, or a unit of the case) with its audit event."""
    shown = display_name(name)
    kind = (content_type or "application/octet-stream").strip()[:100] or "application/octet-stream"
    now = app.clock.now()
    with app.db.write() as conn:
        who = app.actor(conn, actor)
        case = app._case(conn, case_id)
        if who.role not in ROLES or (who.role == "unit" and who.unit not in case.units()):
            raise PermissionDeniedError(f"user '{who.name}' ({who.role}) may not attach files to case {case_id}; "
                                        "allowed: the office and the case's lead or co-units")
        if case.closed_at is not None:
            raise RefusedError(f"case {case_id} is closed ({case.state}): no more attachments")
        content = read_bounded(stream)
        digest = hashlib.sha256(content).hexdigest()
        aid = int(conn.execute(insert(ATTACHMENTS).values(
            case_id=case_id, name=shown, content_type=kind, size=len(content), sha256=digest, content=content,
            added_by=who.name, added_at=now).returning(ATTACHMENTS.c.id)).scalar_one())
        chain = audit_log.Chain(conn)
        chain.add(case_id, [Event("attached", who.name, who.role, now, from_state=case.state, to_state=case.state,
                                  note=shown, data={"attachment": aid, "name": shown, "size": len(content),
                                                    "sha256": digest, "content_type": kind})])
        chain.flush()
    return {"id": aid, "case_id": case_id, "name": shown, "content_type": kind, "size": len(content),
            "sha256": digest, "added_by": who.name, "added_at": now.astimezone(app.tz).isoformat()}


def listing(app: App, case_id: int) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        rows = conn.execute(select(*_META).where(ATTACHMENTS.c.case_id == case_id).order_by(ATTACHMENTS.c.id))
        return [{**r._mapping, "added_at": r.added_at.astimezone(app.tz).isoformat()} for r in rows]


def fetch(app: App, case_id: int, aid: int) -> tuple[dict[str, Any], bytes]:
    """An attachment's name, type and bytes, once they are checked against their audit event."""
    with app.db.read() as conn:
        row = conn.execute(select(*_META, ATTACHMENTS.c.content)
                           .where(ATTACHMENTS.c.id == aid, ATTACHMENTS.c.case_id == case_id)).first()
        if row is None:
            raise NotFoundError(f"case {case_id} has no attachment {aid}")
        # read to the end (a case has few events): an abandoned stream would hold its cursor open
        found = [e for e in audit_log.iterate(conn, case_id=case_id)
                 if e["action"] == "attached" and e["data"].get("attachment") == aid]
        added = found[0] if found else None
    content = bytes(row.content)
    actual = hashlib.sha256(content).hexdigest()
    if added is None or added["data"].get("sha256") != actual or row.sha256 != actual:
        raise IntegrityError(f"附件 {aid}（{row.name}）与添加它的审计事件记录的 SHA-256 不符：文件已被改动，拒绝下载")
    meta = dict(row._mapping)
    meta.pop("content")
    return meta, content
