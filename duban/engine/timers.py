"""A rung of a deadline's ladder falling due: it escalates and notifies once per deadline,
and its trigger (e.g. `expire`) fires whenever the rung falls due while it is allowed.

A rung a catch-up fires after a later rung of the same deadline has also fallen due (a
yellow card after the due instant passed) is *overtaken* (SPEC §16): the level still rises
and the audit event says so, but it sends no notice — the later rung's does. A progress
report's period that ends records whether the report came and starts the next period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from duban.engine.actors import SYSTEM
from duban.engine.deadlines import shift
from duban.engine.labels import rung_line
from duban.engine.model import RUNNING, Case, DeadlineState, Event, Notice, Outcome
from duban.engine.schedules import next_due
from duban.engine.tracking import Deadlines
from duban.engine.transition import transition
from duban.engine.workflow import PROGRESS, Workflow

# The audit actions of a rung that fired: it escalated (and notified), or a later rung of the
# same deadline had also fallen due, so it only raised the level (SPEC §16 "Overtaken rungs").
ESCALATE, OVERTAKEN = "escalate", "overtaken"


@dataclass(frozen=True)
class DueTimer:
    """A timer storage found due: which rung of which deadline, and when it fell due."""

    id: int
    case_id: int
    deadline: str
    rung: int
    due_at: datetime


def fire_timer(deadlines: Deadlines, wf: Workflow, case: Case, timer: DueTimer, now: datetime) -> Outcome:
    """Fire one rung of a deadline's ladder: escalate and notify once, fire its trigger if allowed.

    Not overtaken when the rung's own trigger ends the deadline: then no later rung comes."""
    out = Outcome(case)
    deadline = case.deadlines.get(timer.deadline)
    if deadline is None or deadline.status != RUNNING:
        return out  # the deadline ended after the timer was claimed: nothing to do
    rung = wf.rung(timer.deadline, timer.rung)
    label = wf.deadline_specs(case.data)[timer.deadline].label
    period_end = wf.offset(timer.deadline, timer.rung).amount >= 0
    if period_end:
        deadline.missed = True
    escalates = timer.rung not in deadline.fired_rungs
    state, before = case.state, case.escalation_level
    overtaken_by = _overtaken_by(deadlines, wf, deadline, timer.rung, now) if escalates else None
    if escalates:
        deadline.fired_rungs.append(timer.rung)
        if rung.level is not None:
            case.escalation_level = max(case.escalation_level, rung.level)
    level = case.escalation_level
    sub, trigger = None, rung.trigger
    if trigger and trigger in wf.allowed_triggers(case.state):
        which = {"deadline": timer.deadline, "rung": timer.rung, "timer_due_at": timer.due_at.isoformat()}
        sub = transition(deadlines, wf, case, trigger, SYSTEM, f"{label}：{rung.label}", {}, now, timer.due_at, which)
    if deadline.status != RUNNING:
        overtaken_by = None
    if escalates:
        _escalate(deadlines, wf, case, deadline, timer, label, (state, before, level), overtaken_by, now, out)
    if sub is not None and trigger:
        out.events.extend(sub.events)
        out.arm.extend(sub.arm)
        out.cancel.extend(sub.cancel)
        out.fired.append(f"案件 {case.id} {wf.trigger_label(trigger)} → {wf.state_label(case.state)}")
    if timer.deadline == PROGRESS and period_end:
        _next_period(deadlines, wf, case, deadline, timer, now, out)
    return out


def _escalate(deadlines: Deadlines, wf: Workflow, case: Case, deadline: DeadlineState, timer: DueTimer, label: str,
              levels: tuple[str, int, int], overtaken_by: int | None, now: datetime, out: Outcome) -> None:
    """The audit event of a rung, and its notices unless a later rung overtook it; `levels`
    is the case's state and its level before and after the rung."""
    state, before, level = levels
    rung = wf.rung(timer.deadline, timer.rung)
    notice = rung.notice if overtaken_by is None else None
    recipients = _recipients(case, notice.to) if notice else []
    data = {"deadline": timer.deadline, "rung": timer.rung, "rung_label": rung.label,
            "timer_due_at": timer.due_at.isoformat(), "deadline_due_at": deadline.due_at.isoformat(),
            "level_before": before, "level": level, "notice": notice.kind if notice else None,
            "recipients": recipients}
    suffix = ""
    if overtaken_by is not None:
        later = wf.rung(timer.deadline, overtaken_by).label
        data.update(overtaken=True, overtaken_by=overtaken_by, overtaken_by_label=later)
        suffix = f"（已被{later}取代，不发通知）"
    note = f"{label}：{rung.label}{suffix}"
    action = OVERTAKEN if overtaken_by is not None else ESCALATE
    out.events.append(Event(action, SYSTEM.name, SYSTEM.role, now, from_state=state, to_state=state,
                            note=note, data=data))
    if notice:
        due_local = deadline.due_at.astimezone(deadlines.tz)
        title = f"{notice.kind}：{case.title}（{label} {due_local:%Y-%m-%d %H:%M}）"
        out.notices.extend(Notice(notice.kind, r, rung.level, title, now) for r in recipients)
    shown_level = level if rung.level is not None else None
    out.fired.append(rung_line(case.id, label, rung.label, shown_level, notice.kind if notice else None, recipients)
                     + suffix)


def _overtaken_by(deadlines: Deadlines, wf: Workflow, deadline: DeadlineState, index: int,
                  now: datetime) -> int | None:
    """The latest later rung of the deadline that has also fallen due by ``now``, if any."""
    def instant(i: int) -> datetime:
        return shift(deadline.due_at, wf.offset(deadline.name, i), deadlines.calendar, deadlines.tz).due_at

    mine = instant(index)
    later = [(instant(i), i) for i in range(len(wf.rungs_of(deadline.name))) if i != index]
    due = [(at, i) for at, i in later if mine < at <= now]
    return max(due)[1] if due else None


def _next_period(deadlines: Deadlines, wf: Workflow, case: Case, d: DeadlineState, timer: DueTimer, now: datetime,
                 out: Outcome) -> None:
    """A report period ended: record whether the report came, and start the next period."""
    reported = d.data_reported
    ended = d.due_at
    d.anchor_at, d.due_at = ended, next_due(d.rule, ended, deadlines.tz)
    d.fired_rungs, d.missed, d.data_reported = [], False, False
    out.arm.extend(deadlines.rung_timers(wf, d, range(len(wf.rungs_of(d.name)))))
    out.events.append(Event(
        "report_period", SYSTEM.name, SYSTEM.role, now, from_state=case.state, to_state=case.state,
        note="进度报告已报送" if reported else "进度报告缺报",
        data={"deadline": d.name, "rung": timer.rung, "timer_due_at": timer.due_at.isoformat(),
              "period_end": ended.isoformat(), "reported": reported, "next_due": d.due_at.isoformat()},
    ))
    if reported:
        out.fired.append(f"案件 {case.id} 进度报告已按期报送，下次报送期限 {d.due_at.astimezone(deadlines.tz):%Y-%m-%d}")


def _recipients(case: Case, to: Sequence[str]) -> list[str]:
    out: list[str] = []
    for r in to:
        out.extend([case.lead_unit] if r == "lead_unit" else case.co_units if r == "co_units" else [r])
    return out
