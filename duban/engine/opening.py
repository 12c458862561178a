"""Opening a case (交办): who may, what it must be given, and its first deadlines.

The office gives a title, a lead unit and its co-units, the workflow's fields, and — as
its workflow asks — a due date, milestones (时间节点) and a progress-report schedule; each
is checked before anything is decided, and a due date already past refuses the case.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from duban.engine.actors import Actor
from duban.engine.deadlines import FROM_CASE, compute_deadline, parse_rule
from duban.engine.model import Case, Event, Outcome
from duban.engine.schedules import check_schedule
from duban.engine.tracking import Deadlines
from duban.engine.workflow import MILESTONES_KEY, REPORT_KEY, Workflow
from duban.errors import FieldRef, PermissionDeniedError, UsageError

OPENER_ROLES = ("office", "leader")


def open_case(
    deadlines: Deadlines,
    wf: Workflow,
    *,
    title: str,
    lead_unit: str,
    co_units: list[str],
    due: str | None,
    values: dict[str, str],
    actor: Actor,
    now: datetime,
    milestones: Sequence[tuple[str, str]] = (),
    report: str | None = None,
) -> Outcome:
    """Open a case in the workflow's initial state and start its deadlines.

    `milestones` are (day, title) pairs (时间节点); `report` a progress-report schedule."""
    if actor.role not in OPENER_ROLES:
        raise PermissionDeniedError(
            f"user '{actor.name}' ({actor.role}) may not open cases; allowed roles: {', '.join(OPENER_ROLES)}"
        )
    if not title.strip():
        raise UsageError(FieldRef("title"), " must not be empty")
    if not lead_unit.strip():
        raise UsageError(FieldRef("lead_unit"), " (the lead unit) must not be empty")
    if lead_unit in co_units or len(set(co_units)) != len(co_units):
        raise UsageError(FieldRef("co_units"), ": each co-unit once, and not the lead unit")
    _check_fields(wf, values)
    uses_due = any(d.rule == FROM_CASE for d in wf.spec.deadlines.values())
    if due is None and uses_due:
        raise UsageError(f"workflow '{wf.name}' needs ", FieldRef("due"), " (e.g. 2027-05-31, 15wd, 3mo, 5h)")
    if due is not None and not uses_due:
        raise UsageError(f"workflow '{wf.name}' takes no ", FieldRef("due"), ": its deadlines come from its rules")
    if due is not None:
        parse_rule(due, deadlines.tz)  # a malformed rule is a usage error before anything else
    duties = _duties(deadlines, wf, milestones, report, now)
    case = Case(
        workflow=wf.name,
        workflow_version=wf.version,
        state=wf.spec.initial,
        title=title.strip(),
        lead_unit=lead_unit.strip(),
        co_units=list(co_units),
        opened_at=now,
        opened_by=actor.name,
        due_rule=due,
        data={**values, **duties},
    )
    out = Outcome(case)
    out.events.append(
        Event(
            "open", actor.name, actor.role, now, to_state=case.state,
            data={"title": case.title, "lead_unit": case.lead_unit, "co_units": case.co_units,
                  "due": due, "values": dict(values), "workflow_version": wf.version,
                  "milestones": [list(m) for m in milestones], "report": report},
        )
    )
    deadlines.sync(wf, case, now, out)
    main = wf.spec.main_deadline
    if main and main in case.deadlines and case.deadlines[main].due_at <= now:
        raise UsageError(FieldRef("due"),
                         f" {due}: the due date is already past (now {now.astimezone(deadlines.tz):%Y-%m-%d %H:%M})")
    return out


def _duties(deadlines: Deadlines, wf: Workflow, milestones: Sequence[tuple[str, str]], report: str | None,
            now: datetime) -> dict[str, Any]:
    """Check the milestones and report schedule given at opening; what the case keeps of them."""
    kept: dict[str, Any] = {}
    if milestones:
        if wf.spec.milestones is None:
            raise UsageError(f"workflow '{wf.name}' has no milestones (", FieldRef("milestones"), ")")
        for day, title in milestones:
            rule = parse_rule(day, deadlines.tz)
            if rule.unit != "date" or not title.strip():
                raise UsageError(FieldRef("milestones"), f" {day}={title}: use DATE=TITLE, e.g. 2027-03-31=完成方案编制")
            if compute_deadline(rule, now, deadlines.calendar, deadlines.tz).due_at <= now:
                raise UsageError(FieldRef("milestones"), f" {day}: the date is already past")
        kept[MILESTONES_KEY] = [{"due": day, "title": title.strip()} for day, title in milestones]
    if report is not None:
        if wf.spec.reports is None:
            raise UsageError(f"workflow '{wf.name}' has no progress reports (", FieldRef("report"), ")")
        kept[REPORT_KEY] = check_schedule(report)
    return kept


def _check_fields(wf: Workflow, values: dict[str, str]) -> None:
    for key, value in values.items():
        field = wf.spec.fields.get(key)
        if field is None or not field.settable:
            allowed = ", ".join(k for k, f in wf.spec.fields.items() if f.settable) or "none"
            raise UsageError(FieldRef(f"data.{key}"), f"=…: workflow '{wf.name}' has no field '{key}' (fields: {allowed})")
        if field.values is not None and value not in field.values:
            raise UsageError(FieldRef(f"data.{key}"), f"={value}: allowed values: {', '.join(field.values)}")
