"""The words people read for the identifiers scripts read (SPEC §16 "People read Chinese;
scripts read identifiers"), and the one way a person sees an instant.

Identifiers stay in `--json`, JSONL and the identifier columns of CSV/XLSX exports; every
table, line and label column a person reads shows these labels instead. A workflow's own
states and triggers are labelled by the workflow (`Workflow.state_label`,
`Workflow.trigger_label`); everything shared by all workflows is here (the levels' and
recipients' words from `duban.engine.labels`, which writes them first). This module imports
nothing else of duban, so the views, the reports and the exports can all use it.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from duban.engine.labels import LEVEL_LABELS as LEVEL_LABELS
from duban.engine.labels import RECIPIENT_LABELS as RECIPIENT_LABELS
from duban.engine.labels import level_label as level_label
from duban.engine.labels import recipient_label as recipient_label

ROLE_LABELS = {
    "office": "督查室", "unit": "承办单位", "leader": "分管领导", "inspector": "纪检监察", "system": "系统",
    "operator": "系统管理员",
}
# The audit actions (SPEC §7): `fire` is a person's (or the scheduler's) trigger, the rest
# are steps duban records by itself.
ACTION_LABELS = {
    "open": "交办", "fire": "操作", "escalate": "升级督办", "overtaken": "越级记录",
    "recompute": "重算时限", "report_period": "进度报告期满", "timer_refused": "计时器未执行",
    "extension_requested": "申请延期", "extension_approved": "批准延期", "extension_refused": "不予延期",
    "suspended": "挂起", "resumed": "恢复计时",
    "instructed": "领导批示", "urged": "催办", "watched": "关注", "unwatched": "取消关注", "attached": "添加附件",
    "unit_added": "新增单位", "unit_renamed": "单位更名", "user_added": "新增用户",
}
TIME_FORMAT = "%Y-%m-%d %H:%M"


def role_label(role: str | None) -> str:
    return ROLE_LABELS.get(role or "", role or "")


def action_label(action: str | None) -> str:
    return ACTION_LABELS.get(action or "", action or "")


def shown_time(value: datetime | str | None, tz: tzinfo | None = None) -> str:
    """An instant as a person reads it everywhere: ``2026-11-30 23:59`` in the office's zone.

    Takes an aware datetime (shown in ``tz``) or the ISO text the JSON views hold (already
    in the office's zone, so shown as it is); None and "" are "-"."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            return value  # not an instant after all: shown as written
    else:
        at = value
    if tz is not None and at.tzinfo is not None:
        at = at.astimezone(tz)
    return at.strftime(TIME_FORMAT)
