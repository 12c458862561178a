"""What a delivered notice says (SPEC §14): Chinese text naming the case, its deadline, how
late it is and the link to the case page, ending with the delivery's stable id.

One `Message` per attempt: the lateness is counted at the moment of sending, so a retry a
day later says how late the case is then; the id never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only its shape: a message is text, and the store (SQL) writes what it says
    from duban.delivery.store import Due

ROLE_NAMES = {"office": "督查室", "leader": "分管领导", "inspector": "纪检监察"}
ASK = {  # what the notice asks, by kind; other kinds get the overdue or the reminder line
    "预警提醒": "请抓紧办理，确保按期办结。",
    "催办通知": "请立即办理，并及时报告办理情况。",
    "督办通知": "请单位主要负责同志督促办理，并报告办理情况和超期原因。",
    "通报": "现予通报，请责任单位抓紧整改落实。",
}


@dataclass(frozen=True)
class Message:
    uid: str  # the delivery's stable id (webhook-id, Message-ID, the last line of robot messages)
    subject: str
    text: str
    markdown: str
    data: dict[str, Any]  # the same facts for machines: the webhook's `data`


def late_text(due_at: datetime | None, now: datetime) -> str:
    from duban.reports.facts import describe_late

    if due_at is None:
        return "未设办结时限"
    if now > due_at:
        return f"已超期{describe_late(now - due_at)}"
    return f"距时限还有{describe_late(due_at - now)}"


def addressee(recipient: str) -> str:
    return ROLE_NAMES.get(recipient, recipient)


def compose(d: Due, now: datetime, tz: tzinfo, office: str, url: str | None) -> Message:
    due_at = d.deadline_due_at or d.case_due_at
    deadline = d.deadline or "办结时限"
    due_text = f"{due_at.astimezone(tz):%Y-%m-%d %H:%M}" if due_at else "未设"
    late = late_text(due_at, now)
    ask = ASK.get(d.kind) or ("请抓紧办理。" if due_at and now <= due_at else "请立即办理，并及时报告办理情况。")
    subject = f"【{d.kind}】{d.case_title}"
    dated = f"{d.notice_at.astimezone(tz):%Y年%m月%d日}"
    lines = [
        f"{addressee(d.recipient)}：",
        f"事项“{d.case_title}”（编号 {d.case_id}）的{deadline}为 {due_text}，{late}。{ask}",
        *([f"事项页面：{url}"] if url else []),
        f"{office}　{dated}",
        f"通知编号：{d.uid}",
    ]
    markdown = "\n\n".join([
        f"### {subject}",
        f"**{addressee(d.recipient)}**：事项“{d.case_title}”（编号 {d.case_id}）的{deadline}为 **{due_text}**，"
        f"**{late}**。{ask}",
        *([f"[查看事项]({url})"] if url else []),
        f"{office}　{dated}",
        f"> 通知编号：{d.uid}",
    ])
    data = {
        "delivery_id": d.uid, "notice_id": d.notice_id, "case_id": d.case_id, "kind": d.kind,
        "recipient": d.recipient, "title": d.title, "case_title": d.case_title, "deadline": deadline,
        "due_at": due_at.astimezone(tz).isoformat() if due_at else None,
        "late_seconds": int((now - due_at).total_seconds()) if due_at and now > due_at else 0,
        "url": url, "office": office, "notice_at": d.notice_at.astimezone(tz).isoformat(), "text": "\n".join(lines),
    }
    return Message(d.uid, subject, "\n".join(lines), markdown, data)
