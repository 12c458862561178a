"""`report accountability`: the 问责专报 (seed 003 实行"问责专报").

For each case: its timeline (every audit event), every deadline with whether and by how
much it was missed and which unit was the lead when it fell due, each escalation and
notice, the extensions, suspensions and other deadline changes (any audit event that is
not an opening, a transition or an escalation, shown as recorded), and the measure
decided. Without ``--case`` the brief covers the cases that matter for accountability:
those held accountable, with a missed deadline, or escalated to a red card or beyond.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from duban.engine.calendar import WorkingCalendar
from duban.engine.operations import LABELS as SHARED_LABELS
from duban.engine.timeliness import lateness, owed_by_unit
from duban.present.labels import LEVEL_LABELS
from duban.present.views import DEADLINE_STATUS_LABELS
from duban.reports import Report, Section
from duban.reports.facts import HOLD, RUNG_ACTIONS, CaseView, describe_late, held_accountable, late_working_days
from duban.reports.period import Period

DELIVERED = ("notice_sent", "notice_failed")  # a notice's delivery ended (SPEC §14): its own part, 送达
ROUTINE = ("open", "fire", *RUNG_ACTIONS, *DELIVERED)  # everything else is a deadline change shown generically
OFFICE = "督查室"  # who answers for the office's own deadlines (派单, 回访)
ACTION_LABELS = {
    "open": "交办", "fire": "操作", "escalate": "升级督办", "overtaken": "已越级（不发通知）", "recompute": "重算时限",
    "extension_requested": "申请延期", "extension_approved": "批准延期", "extension_refused": "不予延期",
    "suspended": "挂起", "resumed": "恢复计时", "notice_sent": "通知送达", "notice_failed": "通知未能送达",
}
CASE_COLUMNS = [
    ("case_id", "编号"), ("title", "标题"), ("workflow_label", "流程"), ("lead_unit", "牵头单位"),
    ("state_label", "状态"), ("opened_at", "交办时间"), ("closed_at", "办结时间"),
    ("escalation_label", "预警级别"), ("measure", "问责方式"), ("decided_by", "决定人"), ("decided_at", "决定时间"),
]
DEADLINE_COLUMNS = [
    ("case_id", "编号"), ("label", "时限"), ("rule", "规则"), ("due_at", "应完成"), ("original_due_at", "原定时限"),
    ("status_label", "状态"), ("ended_at", "结束时间"), ("missed", "超期"), ("late_by", "超出"),
    ("late_working_days", "超出工作日"), ("responsible", "责任单位"),
]
ESCALATION_COLUMNS = [
    ("case_id", "编号"), ("seq", "序号"), ("at", "时间"), ("rung", "档位"), ("level_label", "级别"),
    ("notice", "通知"), ("recipients", "发送对象"),
]
NOTICE_COLUMNS = [("case_id", "编号"), ("at", "时间"), ("kind", "类型"), ("recipient", "发送对象"), ("title", "标题")]
CHANGE_COLUMNS = [
    ("case_id", "编号"), ("seq", "序号"), ("at", "时间"), ("actor", "操作人"), ("action_label", "事项"),
    ("note", "说明"), ("detail", "内容"),
]
TIMELINE_COLUMNS = [
    ("case_id", "编号"), ("seq", "序号"), ("at", "时间"), ("actor", "操作人"), ("role", "角色"),
    ("action_label", "动作"), ("from_label", "原状态"), ("to_label", "新状态"), ("note", "说明"),
]
DELIVERY_COLUMNS = [
    ("case_id", "编号"), ("at", "时间"), ("kind", "类型"), ("recipient", "送达对象"), ("channel_label", "方式"),
    ("address", "地址"), ("status_label", "结果"), ("attempts", "尝试次数"), ("delivery_uid", "投递编号"),
]
PARTS = (
    ("deadlines", "时限", DEADLINE_COLUMNS), ("escalations", "升级督办", ESCALATION_COLUMNS),
    ("notices", "通知", NOTICE_COLUMNS), ("deliveries", "送达", DELIVERY_COLUMNS), ("changes", "延期与挂起", CHANGE_COLUMNS),
    ("timeline", "时间线", TIMELINE_COLUMNS),
)


def relevant(v: CaseView, now: datetime) -> bool:
    """Worth a brief: held accountable, a deadline missed, or escalated to a red card or beyond."""
    c = v.case
    return held_accountable(c) or c.escalation_level >= 2 or any(lateness(d, now) for d in c.deadlines.values())


def lead_unit_at(v: CaseView, timeline: Sequence[dict[str, Any]], at: datetime) -> str:
    """The lead unit when ``at`` came: the one it was opened with, or the last it was reassigned to (改派)."""
    lead = None
    for e in timeline:
        if e["at"] > at:
            break
        if e["action"] == "open":
            lead = e["data"].get("lead_unit")
        elif e["trigger"] and e["data"].get("unit") and any(t.reassigns for t in v.wf.spec.transition_for(e["trigger"])):
            lead = e["data"]["unit"]
    return lead or v.case.lead_unit


def _label(v: CaseView, e: dict[str, Any]) -> str:
    trigger = e.get("trigger")
    if trigger:
        return SHARED_LABELS.get(trigger) or v.wf.trigger_label(trigger)
    return ACTION_LABELS.get(e["action"], str(e["action"]))


def _escalation(case_id: int | None, e: dict[str, Any]) -> dict[str, Any]:
    """One rung that fired; its level only when it raised the case's level."""
    level, before = int(e["data"].get("level") or 0), int(e["data"].get("level_before") or 0)
    return {"case_id": case_id, "seq": e["seq"], "at": e["at"], "rung": e["note"],
            "level": level if level > before else None, "level_label": LEVEL_LABELS[level] if level > before else None,
            "notice": e["data"].get("notice"), "recipients": e["data"].get("recipients") or []}


def _delivery(case_id: int | None, e: dict[str, Any]) -> dict[str, Any]:
    """When and how a recipient was told (or was not): the final event of one delivery."""
    from duban.delivery.messages import addressee
    from duban.delivery.store import CHANNEL_LABELS

    d = e["data"]
    sent = e["action"] == "notice_sent"
    return {"case_id": case_id, "seq": e["seq"], "at": e["at"], "kind": d.get("kind"),
            "recipient": addressee(str(d.get("recipient"))), "channel": d.get("channel"),
            "channel_label": CHANNEL_LABELS.get(str(d.get("channel")), d.get("channel")), "address": d.get("address"),
            "status": "sent" if sent else "failed", "status_label": "已送达" if sent else "送达失败",
            "attempts": d.get("attempts"), "error": d.get("error"), "delivery_uid": d.get("delivery_uid")}


def case_brief(v: CaseView, timeline: Sequence[dict[str, Any]], notices: Sequence[dict[str, Any]],
               now: datetime, calendar: WorkingCalendar, tz: tzinfo) -> dict[str, Any]:
    """Everything the brief says about one case."""
    c, wf = v.case, v.wf
    decision = next((e for e in reversed(timeline) if e.get("trigger") == HOLD), None)
    deadlines = []
    specs = wf.deadline_specs(c.data)  # the definition's, plus the case's milestones and reports
    for name, d in c.deadlines.items():
        late = lateness(d, now)
        spec = specs.get(name)
        responsible = (lead_unit_at(v, timeline, d.due_at) if owed_by_unit(wf, name, spec) else OFFICE) if late else None
        deadlines.append({
            "case_id": c.id, "name": name, "label": spec.label if spec else name, "rule": d.rule,
            "due_at": d.due_at, "original_due_at": d.original_due_at, "status": d.status,
            "status_label": DEADLINE_STATUS_LABELS.get(d.status, d.status), "ended_at": d.ended_at,
            "missed": late is not None, "late_by": describe_late(late) if late else None,
            "late_seconds": int(late.total_seconds()) if late else None,
            "late_working_days": late_working_days(d, late, calendar, tz) if late else None,
            "responsible": responsible,
        })
    escalations = [_escalation(c.id, e) for e in timeline if e["action"] in RUNG_ACTIONS]
    return {
        "case_id": c.id, "title": c.title, "workflow": c.workflow, "workflow_label": wf.spec.label,
        "lead_unit": c.lead_unit, "co_units": c.co_units, "state": c.state, "state_label": wf.state_label(c.state),
        "opened_at": c.opened_at, "closed_at": c.closed_at, "escalation_level": c.escalation_level,
        "escalation_label": LEVEL_LABELS.get(c.escalation_level, str(c.escalation_level)),
        "measure": (decision["data"].get("measure") if decision else None) or c.data.get("measure"),
        "decided_by": decision["actor"] if decision else None, "decided_at": decision["at"] if decision else None,
        "decision_note": decision["note"] if decision else None,
        "deadlines": deadlines, "escalations": escalations,
        "notices": [{"case_id": c.id, "at": n["created_at"], "kind": n["kind"], "recipient": n["recipient"],
                     "level": n["level"], "title": n["title"]} for n in notices],
        "deliveries": [_delivery(c.id, e) for e in timeline if e["action"] in DELIVERED],
        "changes": [{"case_id": c.id, "seq": e["seq"], "at": e["at"], "actor": e["actor"], "action": e["action"],
                     "trigger": e["trigger"], "action_label": _label(v, e), "note": e["note"], "data": e["data"],
                     "detail": json.dumps(e["data"], ensure_ascii=False, sort_keys=True)}
                    for e in timeline if e["action"] not in ROUTINE],
        "timeline": [{"case_id": c.id, "seq": e["seq"], "at": e["at"], "actor": e["actor"], "role": e["role"],
                      "action": e["action"], "trigger": e["trigger"], "action_label": _label(v, e),
                      "from_state": e["from_state"], "to_state": e["to_state"],
                      "from_label": wf.state_label(e["from_state"]) if e["from_state"] else None,
                      "to_label": wf.state_label(e["to_state"]) if e["to_state"] else None, "note": e["note"]}
                     for e in timeline],
    }


def build(briefs: list[dict[str, Any]], now: datetime, covers: str = "") -> Report:
    """The brief: a summary row per case, then each part across the cases; JSON nests per case.
    ``covers`` names what it is about (a case, a unit's cases) in its heading."""
    sections = [Section("cases", "案件", CASE_COLUMNS, briefs)]
    sections += [Section(key, title, cols, [row for b in briefs for row in b[key]]) for key, title, cols in PARTS]
    return Report(name="accountability", title="问责专报", period=Period(label=covers or "全部需问责案件"),
                  generated_at=now, sections=sections, data={"cases": briefs})
