"""Operations every workflow has (SPEC §4 preamble, §5.5): extension and suspension.

They change no state; they move deadlines. Extension (延期): a unit asks before its main
deadline passes, with a reason and a later date; the office approves (the deadline is
replaced and its timers rescheduled) or refuses (lateness stays measured against the
original date). Suspension (挂起): the office stops every clock of the case; on resume each
running deadline moves out by the suspended time — exact time for `h`/`min` rules,
working days for `wd` rules, calendar days for day, month and date rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from duban.engine.case_notes import LABELS as CASE_NOTE_LABELS
from duban.engine.deadlines import compute_deadline, parse_rule, working_days_elapsed
from duban.engine.model import RUNNING, Case, DeadlineState, Event, Outcome
from duban.engine.schedules import is_schedule
from duban.engine.timeliness import co_unit_refusal, current_due, lead_only, running_completion
from duban.engine.wording import takes
from duban.engine.workflow import Workflow
from duban.errors import FieldRef, GuardRejectedError, PermissionDeniedError, RefusedError, UsageError

if TYPE_CHECKING:
    from duban.engine.actors import Actor
    from duban.engine.tracking import Deadlines

# Every workflow-independent trigger's label, these and the case notes' (领导批示, 催办, 关注).
LABELS = {
    "request_extension": "申请延期", "approve_extension": "批准延期", "refuse_extension": "不予延期",
    "suspend": "挂起", "resume": "恢复计时", **CASE_NOTE_LABELS,
}
ROLES = {
    "request_extension": ("unit",), "approve_extension": ("office",), "refuse_extension": ("office",),
    "suspend": ("office",), "resume": ("office",),
}
REQUEST = "extension_request"  # case.data key of the pending request


def shared_available(wf: Workflow, case: Case) -> list[tuple[str, tuple[str, ...]]]:
    """Which shared operations make sense for the case now, with their roles."""
    if case.closed_at is not None:
        return []
    if case.suspended:
        return [("resume", ROLES["resume"])]
    out: list[tuple[str, tuple[str, ...]]] = [("suspend", ROLES["suspend"])]
    main = _main_deadline(wf, case)
    if REQUEST in case.data:
        out += [("approve_extension", ROLES["approve_extension"]), ("refuse_extension", ROLES["refuse_extension"])]
    elif main is not None:
        out.append(("request_extension", ROLES["request_extension"]))
    return out


def run_shared_operation(
    deadlines: Deadlines, wf: Workflow, case: Case, op: str, actor: Actor, note: str, values: dict[str, str], now: datetime
) -> Outcome:
    """Check role, unit and preconditions, then apply one shared operation."""
    assert case.id is not None
    if actor.role not in ROLES[op]:
        raise PermissionDeniedError(f"user '{actor.name}' ({actor.role}) may not {op}; allowed roles: {', '.join(ROLES[op])}")
    if actor.role == "unit" and actor.unit not in case.units():
        raise PermissionDeniedError(f"user '{actor.name}' of unit '{actor.unit}' may not act on case {case.id}")
    if actor.role == "unit" and actor.unit != case.lead_unit and lead_only(wf, case.state, op):
        raise PermissionDeniedError(co_unit_refusal(case, op, actor.name, actor.unit))
    allowed_keys = {"request_extension": {"until"}}.get(op, set())
    for key in values:
        if key not in allowed_keys:
            raise UsageError(FieldRef(f"data.{key}"), f"=…: '{op}' takes ", *takes(sorted(allowed_keys)))
    if op == "resume" and not case.suspended:
        raise RefusedError(f"case {case.id} is not suspended: nothing to resume")
    if op != "resume" and case.suspended:
        raise RefusedError(f"case {case.id} is suspended: only 'resume (office)' is allowed")
    needs_note = op in ("request_extension", "suspend", "resume", "refuse_extension")
    if needs_note and not note.strip():
        raise GuardRejectedError("note_required", f"'{op}' needs a note saying why (", FieldRef("note"), " TEXT)")
    handler = {"request_extension": _request, "approve_extension": _approve, "refuse_extension": _refuse,
               "suspend": _suspend, "resume": _resume}[op]
    out = handler(deadlines, wf, case, actor, values, now)
    first = out.events[0]
    out.events[0] = Event(first.action, actor.name, actor.role, now, trigger=op, from_state=case.state,
                          to_state=case.state, note=note, data=first.data)
    return out


def _main_deadline(wf: Workflow, case: Case) -> DeadlineState | None:
    """The deadline an extension moves: the running one shown as 办结时限 (the main one, or
    after a 重办 the rework deadline)."""
    return running_completion(wf, case)


def _request(deadlines: Deadlines, wf: Workflow, case: Case, actor: Actor, values: dict[str, str], now: datetime) -> Outcome:
    main = _main_deadline(wf, case)
    if main is None:
        raise RefusedError(f"case {case.id} has no running deadline to extend")
    if now > main.due_at:
        raise RefusedError(
            f"case {case.id}: the deadline {main.due_at.astimezone(deadlines.tz):%Y-%m-%d %H:%M} has passed; "
            "an extension must be asked before it (没有办理延期的按原定时间考核)"
        )
    if "until" not in values:
        raise UsageError("request_extension needs ", FieldRef("data.until"), "=DATE (e.g. until=2027-06-30)")
    rule = parse_rule(values["until"], deadlines.tz)
    if rule.unit not in ("date", "datetime"):
        raise UsageError(FieldRef("data.until"), f"={values['until']}: give a date or ISO datetime, e.g. until=2027-06-30")
    until = compute_deadline(rule, now, deadlines.calendar, deadlines.tz)
    if until.due_at <= main.due_at:
        raise UsageError(
            FieldRef("data.until"), f"={values['until']}: must be after the current deadline "
            f"{main.due_at.astimezone(deadlines.tz):%Y-%m-%d %H:%M}"
        )
    case.data[REQUEST] = {"until": values["until"], "by": actor.name, "at": now.isoformat()}
    return Outcome(case, events=[Event("extension_requested", "", "", now, data={"deadline": main.name, "until": values["until"]})])


def _approve(deadlines: Deadlines, wf: Workflow, case: Case, actor: Actor, values: dict[str, str], now: datetime) -> Outcome:
    request = case.data.get(REQUEST)
    if request is None:
        raise RefusedError(f"case {case.id}: no extension was requested, so there is nothing to approve")
    main = _main_deadline(wf, case)
    if main is None:
        raise RefusedError(f"case {case.id} has no running deadline to extend")
    until = compute_deadline(parse_rule(request["until"], deadlines.tz), now, deadlines.calendar, deadlines.tz)
    old = main.due_at
    if main.original_due_at is None:
        main.original_due_at = old
    main.due_at, main.approximate, main.rule = until.due_at, until.approximate, request["until"]
    main.missed = False
    del case.data[REQUEST]
    case.data.setdefault("extensions", []).append({"from": old.isoformat(), "to": until.due_at.isoformat(), "approved_by": actor.name})
    case.due_at = current_due(wf, case)
    out = Outcome(case, events=[Event("extension_approved", "", "", now,
                                      data={"deadline": main.name, "from": old.isoformat(), "to": until.due_at.isoformat()})])
    out.cancel.append(main.name)
    out.arm.extend(deadlines.rung_timers(wf, main, deadlines.pending_rungs(wf, main)))
    return out


def _refuse(deadlines: Deadlines, wf: Workflow, case: Case, actor: Actor, values: dict[str, str], now: datetime) -> Outcome:
    request = case.data.pop(REQUEST, None)
    if request is None:
        raise RefusedError(f"case {case.id}: no extension was requested, so there is nothing to refuse")
    return Outcome(case, events=[Event("extension_refused", "", "", now, data={"until": request["until"]})])


def _suspend(deadlines: Deadlines, wf: Workflow, case: Case, actor: Actor, values: dict[str, str], now: datetime) -> Outcome:
    running = [name for name, d in case.deadlines.items() if d.status == RUNNING]
    case.suspended = True
    case.data["suspended_at"] = now.isoformat()
    out = Outcome(case, events=[Event("suspended", "", "", now, data={"deadlines": running})])
    out.cancel.extend(running)
    return out


def _resume(deadlines: Deadlines, wf: Workflow, case: Case, actor: Actor, values: dict[str, str], now: datetime) -> Outcome:
    since = datetime.fromisoformat(case.data.pop("suspended_at"))
    case.suspended = False
    case.data["suspended_total_seconds"] = case.data.get("suspended_total_seconds", 0) + int((now - since).total_seconds())
    moved: dict[str, dict[str, str]] = {}
    out = Outcome(case)
    for name, d in case.deadlines.items():
        if d.status != RUNNING:
            continue
        old = d.due_at
        d.due_at = _moved(deadlines, d, since, now)
        if d.original_due_at is None:
            d.original_due_at = old
        moved[name] = {"from": old.isoformat(), "to": d.due_at.isoformat()}
        out.arm.extend(deadlines.rung_timers(wf, d, deadlines.pending_rungs(wf, d)))
    case.due_at = current_due(wf, case)
    out.events.append(Event("resumed", "", "", now, data={"suspended_from": since.isoformat(), "moved": moved}))
    return out


def _moved(deadlines: Deadlines, d: DeadlineState, since: datetime, now: datetime) -> datetime:
    """The deadline pushed out by the suspended time, counted in the rule's own unit."""
    unit = "d" if is_schedule(d.rule) else parse_rule(d.rule, deadlines.tz).unit
    if unit in ("h", "min", "datetime"):
        return d.due_at + (now - since)
    if unit == "wd":
        elapsed, _ = working_days_elapsed(since, now, deadlines.calendar, deadlines.tz)
        day, _ = deadlines.calendar.add_working_days(d.due_at.astimezone(deadlines.tz).date(), elapsed)
        local = d.due_at.astimezone(deadlines.tz)
        return datetime.combine(day, local.timetz()).astimezone(d.due_at.tzinfo)
    days = (now.astimezone(deadlines.tz).date() - since.astimezone(deadlines.tz).date()).days
    return d.due_at + timedelta(days=days)
