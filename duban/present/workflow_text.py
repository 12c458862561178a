"""Plain-text views for people: a workflow's rules and one case's situation."""

from __future__ import annotations

from typing import Any

from duban.engine.workflow import Workflow
from duban.present.labels import role_label, shown_time
from duban.present.output import table, timed

ENGINE_KEYS = ("milestones", "report_schedule", "milestone", "extension_request", "extensions", "suspended_at")


def describe(wf: Workflow) -> str:
    """A workflow's states, triggers, deadlines and ladders, as `workflow show` prints them."""
    s = wf.spec
    lines = [f"{s.label} {wf.name} v{wf.version}  ({wf.source})", s.description]
    if s.overrides:
        lines.append(f"本辖区设置 office settings: {s.overrides['file']} (shipped v{s.overrides['base_version']})")
    lines += ["", "状态 states:"]
    for name, st in s.states.items():
        mark = " (终态 final)" if st.final else (" (初始 initial)" if name == s.initial else "")
        lines.append(f"  {name:<16} {st.label}{mark}")
    lines += ["", "操作 transitions:"]
    rows = [{"trigger": t.trigger, "label": t.label, "from": t.sources, "to": t.dest, "roles": t.roles,
             "guards": t.guards + [f"--set {k}" for k in t.sets]} for t in s.transitions]
    lines.append(table(rows, [("trigger", "操作"), ("label", "名称"), ("from", "从"), ("to", "到"),
                              ("roles", "角色"), ("guards", "条件")]))
    for name, d in s.deadlines.items():
        rule = "--due given when the case is opened" if d.rule == "from_case" else d.rule
        lines += ["", f"时限 {d.label} ({name}): {rule}, from {'opening' if d.anchor == 'opened' else 'entering'} "
                      f"{'/'.join(d.running_in)}"]
        lines += [f"  when {_when(v.when)}: {v.rule}" for v in d.variants]
        if d.when:
            lines.append(f"  only for cases with {_when(d.when)}")
        if d.ends_on:
            lines.append(f"  met by: {', '.join(d.ends_on)}")
        if d.source:
            lines.append(f"  source: {d.source}")
        for rung in s.rungs(name):
            acts = [f"level {rung.level}" if rung.level else "", f"trigger {rung.trigger}" if rung.trigger else "",
                    f"{rung.notice.kind} → {'、'.join(rung.notice.to)}" if rung.notice else ""]
            lines.append(f"  {rung.at:>6}  {rung.label}: {', '.join(a for a in acts if a)}")
    settable = {k: f for k, f in s.fields.items() if f.settable}  # the others only transitions record
    if settable:
        lines += ["", "字段 fields (--set at opening):"]
        lines += [f"  {k}: {f.label}" + (f" ({'|'.join(f.values)})" if f.values else "") for k, f in settable.items()]
    return "\n".join(lines)


def _when(when: dict[str, list[str]]) -> str:
    return " and ".join(f"{k}={'|'.join(v)}" for k, v in when.items())


APPROXIMATE = "约"  # the column a deadline or timer counted on weekends only shows (no calendar for its year)


def case_text(c: dict[str, Any], *, every_timer: bool = False) -> str:
    """One case for a person: header, deadlines, timers, what may happen next.

    Timers a later step cancelled (a deadline rescheduled, a duplicate replaced) are left
    out unless ``every_timer``; the 约 column shows only when some row is approximate."""
    approx = "（约：该年工作日历未载入，仅按周末计算）" if c["approximate"] else ""
    lines = [
        f"案件 {c['id']}  {c['workflow_label']}（{c['workflow']} 第 {c['workflow_version']} 版）",
        f"标题      {c['title']}",
        f"状态      {c['state_label']}" + ("  已挂起" if c["suspended"] else ""),
        f"牵头单位  {c['lead_unit']}" + (f"   配合单位 {'、'.join(c['co_units'])}" if c["co_units"] else ""),
        f"交办时间  {shown_time(c['opened_at'])}  交办人 {c['opened_by']}",
        f"办结时限  {shown_time(c['due_at'])}{approx}",
        f"预警级别  {c['escalation_level']} {c['escalation_label']}" + ("   ⚠ 超期" if c["overdue"] else "   曾超期" if c.get("was_overdue") else ""),
    ]
    if c["closed_at"]:
        lines.append(f"办结时间  {shown_time(c['closed_at'])}")
    shown = {k: v for k, v in c["data"].items() if k not in ENGINE_KEYS}  # those appear as deadlines
    if shown:
        lines.append("数据      " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    if c["deadlines"]:
        lines += ["", "时限:", table(timed(c["deadlines"]), _with_approximate(c["deadlines"], [
            ("label", "时限"), ("rule", "规则"), ("due_at", "到期"), ("status_label", "状态"), ("missed", "已超期")]))]
    timers = c["timers"] if every_timer else [t for t in c["timers"] if t["status"] != "cancelled"]
    if timers:
        lines += ["", "计时器:" if every_timer or len(timers) == len(c["timers"]) else "计时器（--all 列出全部）:",
                  table(timed(timers), _with_approximate(timers, [
                      ("label", "计时器"), ("due_at", "触发时间"), ("status_label", "状态")]))]
    if c.get("accountability"):
        decided = [{**a, "role_label": role_label(a["role"])} for a in c["accountability"]]
        lines += ["", "问责:", table(timed(decided), [
            ("measure", "问责方式"), ("decided_by", "决定人"), ("role_label", "角色"), ("at", "时间"), ("reason", "理由")])]
    if c["allowed_triggers"]:
        lines += ["", "可执行操作: " + "、".join(t["label"] for t in c["allowed_triggers"])]
    return "\n".join(lines)


def _with_approximate(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [*columns, ("approximate", APPROXIMATE)] if any(r.get("approximate") for r in rows) else columns
