"""How cases, timers and notices look to people and scripts: JSON shapes with Chinese labels.

Every instant is shown ISO 8601 with its offset in the office's zone (SPEC §5.1, §8).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from duban.engine.model import Case
from duban.engine.operations import LABELS as SHARED_LABELS
from duban.engine.timeliness import was_overdue
from duban.engine.workflow import Workflow
from duban.present.labels import LEVEL_LABELS, action_label, recipient_label, role_label

TIMER_STATUS_LABELS = {"pending": "待触发", "claimed": "处理中", "fired": "已触发", "cancelled": "已取消"}
DEADLINE_STATUS_LABELS = {"running": "计时中", "ended": "已结束", "done": "已完成"}


def iso(at: datetime | None, tz: tzinfo) -> str | None:
    return at.astimezone(tz).isoformat() if at else None


def case_json(
    case: Case, wf: Workflow, timers: list[dict[str, Any]], tz: tzinfo, allowed: list[dict[str, Any]]
) -> dict[str, Any]:
    """The case as SPEC §8 lists it, plus labels, deadlines and the triggers allowed now
    (`allowed`: as shown, each {"trigger", "label", "roles"}; the caller keeps the labels)."""
    deadlines = []
    specs = wf.deadline_specs(case.data)
    for name, d in case.deadlines.items():
        spec = specs.get(name)
        deadlines.append({
            "name": name, "label": spec.label if spec else name, "rule": d.rule,
            "due_at": iso(d.due_at, tz), "approximate": d.approximate, "status": d.status,
            "status_label": DEADLINE_STATUS_LABELS.get(d.status, d.status), "missed": d.missed,
            "ended_at": iso(d.ended_at, tz),
        })
    return {
        "id": case.id,
        "workflow": case.workflow,
        "workflow_label": wf.spec.label,
        "workflow_version": case.workflow_version,
        "state": case.state,
        "state_label": wf.state_label(case.state),
        "title": case.title,
        "lead_unit": case.lead_unit,
        "co_units": case.co_units,
        "opened_at": iso(case.opened_at, tz),
        "opened_by": case.opened_by,
        "due_at": iso(case.due_at, tz),
        "due_rule": case.due_rule,
        "approximate": any(d.approximate for d in case.deadlines.values() if d.status == "running"),
        "closed_at": iso(case.closed_at, tz),
        "escalation_level": case.escalation_level,
        "escalation_label": LEVEL_LABELS.get(case.escalation_level, str(case.escalation_level)),
        "overdue": case.overdue,
        "was_overdue": was_overdue(case),  # any deadline ever missed, kept after close (曾超期, SPEC §16)
        "suspended": case.suspended,
        "deadlines": deadlines,
        "timers": timers_json(timers, wf, tz, specs),
        "allowed_triggers": allowed,
        "data": case.data,
        "version": case.version,
    }


def timers_json(timers: list[dict[str, Any]], wf: Workflow, tz: tzinfo, specs: dict[str, Any]) -> list[dict[str, Any]]:
    """A case's timers as shown; each deadline's label and ladder looked up once, not per timer."""
    ladders: dict[str, tuple[str, list[Any]]] = {}
    shown = []
    for t in timers:
        name = t["deadline"]
        ladder = ladders.get(name)
        if ladder is None:
            ladder = ladders[name] = (specs[name].label, wf.rungs_of(name)) if name in specs else (name, [])
        shown.append(timer_json(t, tz, *ladder))
    return shown


def timer_json(t: dict[str, Any], tz: tzinfo, deadline_label: str, rungs: list[Any]) -> dict[str, Any]:
    """One timer: rung `t["rung"]` of a deadline labelled `deadline_label` with ladder `rungs`."""
    rung = rungs[t["rung"]] if t["rung"] < len(rungs) else None
    return {
        "id": t["id"],
        "kind": f"{t['deadline']}:{rung.label if rung else t['rung']}",
        "label": f"{deadline_label} · {rung.label}" if rung else t["deadline"],
        "level": rung.level if rung else None,
        "due_at": iso(t["due_at"], tz),
        "status": t["status"],
        "status_label": TIMER_STATUS_LABELS.get(t["status"], t["status"]),
        "approximate": t["approximate"],
        "fired_at": iso(t["fired_at"], tz),
    }


def trigger_label(wf: Workflow | None, trigger: str | None) -> str:
    """A trigger as people read it: the workflow's label, or a shared operation's."""
    if not trigger:
        return ""
    if trigger in SHARED_LABELS:
        return SHARED_LABELS[trigger]
    return wf.trigger_label(trigger) if wf is not None else trigger


def notice_json(n: dict[str, Any], tz: tzinfo) -> dict[str, Any]:
    return {
        "id": n["id"], "case_id": n["case_id"], "created_at": iso(n["created_at"], tz),
        "kind": n["kind"], "recipient": n["recipient"], "recipient_label": recipient_label(n["recipient"]),
        "level": n["level"],
        "level_label": LEVEL_LABELS.get(n["level"], "") if n["level"] is not None else "",
        "title": n["title"],
    }


def event_json(e: dict[str, Any], tz: tzinfo, wf: Workflow | None = None) -> dict[str, Any]:
    """An audit event: its identifiers as stored, and beside them the labels people read
    (the states and triggers in the words of the case's pinned workflow ``wf``)."""
    out = dict(e)
    out["at"] = iso(e["at"], tz)
    out["actor_label"] = role_label(e["actor"]) if e["actor"] in ("system", "operator") else e["actor"]
    out["role_label"] = role_label(e["role"])
    out["action_label"] = action_label(e["action"])
    out["trigger_label"] = trigger_label(wf, e["trigger"])
    for key in ("from_state", "to_state"):
        state = e[key]
        out[f"{key}_label"] = (wf.state_label(state) if wf is not None else state) if state else ""
    return out


def accountability_json(e: dict[str, Any], tz: tzinfo) -> dict[str, Any]:
    """An accountability decision (问责) as recorded in the audit chain."""
    return {"measure": e["data"].get("measure"), "decided_by": e["actor"], "role": e["role"],
            "at": iso(e["at"], tz), "reason": e["note"], "audit_seq": e["seq"]}


def step_json(step: Any, wf: Workflow, label: str) -> dict[str, Any]:
    """The step `case fire` took (an `App.Transitioned`): identifiers and their labels
    (`label`: the trigger's, `trigger_label(wf, step.trigger)`)."""
    return {"trigger": step.trigger, "trigger_label": label,
            "from_state": step.from_state, "from_state_label": wf.state_label(step.from_state),
            "state": step.state, "state_label": wf.state_label(step.state)}
