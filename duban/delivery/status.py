"""`duban notify status` and the delivery columns of `duban notice list` (SPEC §14)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import Connection, func, select

from duban.delivery.store import CHANNEL_LABELS, FAILED, PENDING, RETRYING, SENT, STATUS_LABELS
from duban.storage.tables import DELIVERIES, NOTICES


def _iso(at: datetime | None, tz: tzinfo) -> str | None:
    return at.astimezone(tz).isoformat() if at else None


def status(conn: Connection, now: datetime, tz: tzinfo, failed_limit: int = 20) -> dict[str, Any]:
    """Per channel: pending, retrying, failed and sent; the oldest undelivered notice; claims;
    the latest failures with their last error."""
    d = DELIVERIES.c
    per: dict[str, dict[str, int]] = {}
    for channel, state, count in conn.execute(select(d.channel, d.status, func.count()).group_by(d.channel, d.status)):
        per.setdefault(channel, {PENDING: 0, RETRYING: 0, FAILED: 0, SENT: 0})[state] = int(count)
    channels = [{"channel": c, "label": CHANNEL_LABELS.get(c, c), **counts} for c, counts in sorted(per.items())]
    oldest = conn.execute(
        select(d.id, d.notice_id, d.case_id, d.channel, d.recipient, d.address, d.status, d.attempts, d.next_at,
               d.last_error, NOTICES.c.kind, NOTICES.c.created_at)
        .join_from(DELIVERIES, NOTICES, NOTICES.c.id == d.notice_id)
        .where(d.status.in_((PENDING, RETRYING))).order_by(NOTICES.c.created_at, d.id).limit(1)
    ).first()
    failures = conn.execute(
        select(d.id, d.case_id, d.channel, d.recipient, d.address, d.attempts, d.finished_at, d.last_status_code,
               d.last_error).where(d.status == FAILED).order_by(d.finished_at.desc(), d.id.desc()).limit(failed_limit)
    ).all()
    claims = conn.execute(select(d.claimed_by, func.count(), func.max(d.lease_until))
                          .where(d.claimed_by.is_not(None), d.status.in_((PENDING, RETRYING)))
                          .group_by(d.claimed_by).order_by(d.claimed_by)).all()
    return {
        "now": _iso(now, tz),
        "channels": channels,
        "totals": {s: sum(c[s] for c in channels) for s in (PENDING, RETRYING, FAILED, SENT)},
        "oldest_undelivered": None if oldest is None else {
            "delivery_id": oldest.id, "notice_id": oldest.notice_id, "case_id": oldest.case_id, "kind": oldest.kind,
            "channel": oldest.channel, "recipient": oldest.recipient, "address": oldest.address,
            "status": oldest.status, "attempts": oldest.attempts, "created_at": _iso(oldest.created_at, tz),
            "waiting_seconds": round((now - oldest.created_at).total_seconds()), "next_at": _iso(oldest.next_at, tz),
            "last_error": oldest.last_error,
        },
        "failed": [{"delivery_id": r.id, "case_id": r.case_id, "channel": r.channel, "recipient": r.recipient,
                    "address": r.address, "attempts": r.attempts, "finished_at": _iso(r.finished_at, tz),
                    "status_code": r.last_status_code, "error": r.last_error} for r in failures],
        "claims": [{"node": r[0], "deliveries": int(r[1]), "lease_until": _iso(r[2], tz),
                    "expired": r[2] is not None and r[2] < now} for r in claims],
    }


def status_text(r: dict[str, Any]) -> str:
    """The human form of `notify status`."""
    lines = [f"现在 {r['now'][:16].replace('T', ' ')}"]
    if not r["channels"]:
        lines.append("尚无投递（未配置路由，或还没有需要投递的通知）")
    for c in r["channels"]:
        lines.append(f"  {c['label']}：待发送 {c[PENDING]}，重试中 {c[RETRYING]}，失败 {c[FAILED]}，已送达 {c[SENT]}")
    o = r["oldest_undelivered"]
    if o:
        hours = o["waiting_seconds"] / 3600
        lines.append(f"最早未送达：通知 {o['notice_id']}（案件 {o['case_id']}，{o['kind']}）→ {o['recipient']}"
                     f"（{CHANNEL_LABELS.get(o['channel'], o['channel'])}），已等待 {hours:.1f} 小时，"
                     f"尝试 {o['attempts']} 次" + (f"，上次错误：{o['last_error']}" if o["last_error"] else ""))
    if r["failed"]:
        lines.append("送达失败（最近）：")
        lines.extend(f"  投递 {f['delivery_id']}  案件 {f['case_id']}  {CHANNEL_LABELS.get(f['channel'], f['channel'])}"
                     f" → {f['recipient']}{' <' + f['address'] + '>' if f['address'] else ''}  {f['attempts']} 次  "
                     f"{f['error'] or ''}" for f in r["failed"])
    for c in r["claims"]:
        lines.append(f"领取中：{c['node']} {c['deliveries']} 条，租约至 {c['lease_until']}"
                     + ("（已过期，任一投递进程可接手）" if c["expired"] else ""))
    return "\n".join(lines)


def of_notices(conn: Connection, notice_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Per notice, its deliveries (channel, recipient, status), for `notice list`."""
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in notice_ids}
    ids = list(notice_ids)
    d = DELIVERIES.c
    for start in range(0, len(ids), 500):
        rows = conn.execute(select(d.notice_id, d.channel, d.recipient, d.address, d.status, d.finished_at)
                            .where(d.notice_id.in_(ids[start:start + 500])).order_by(d.id))
        for r in rows:
            found[r.notice_id].append({"channel": r.channel, "recipient": r.recipient, "address": r.address,
                                       "status": r.status, "finished_at": r.finished_at})
    return found


def with_deliveries(app: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`notice list` rows with each notice's deliveries (`deliveries`) and a 送达 cell (`delivery`)."""
    with app.db.read() as conn:
        found = of_notices(conn, [r["id"] for r in rows])
    for r in rows:
        r["deliveries"] = [{**x, "status_label": STATUS_LABELS[x["status"]],
                            "finished_at": _iso(x["finished_at"], app.tz)} for x in found.get(r["id"], [])]
        r["delivery"] = summary(r["deliveries"])
    return rows


def summary(deliveries: Sequence[dict[str, Any]]) -> str:
    """One cell: 钉钉 已送达 · 邮件 重试中 …; '未投递' when the notice is routed nowhere."""
    if not deliveries:
        return "未投递"
    parts: dict[str, list[str]] = {}
    for x in deliveries:
        parts.setdefault(CHANNEL_LABELS.get(x["channel"], x["channel"]), []).append(x["status"])
    shown = []
    for label, states in parts.items():
        worst = next(s for s in (FAILED, RETRYING, PENDING, SENT) if s in states)
        shown.append(f"{label}{STATUS_LABELS[worst]}" + (f"×{len(states)}" if len(states) > 1 else ""))
    return "，".join(shown)
