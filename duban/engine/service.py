"""The engine's decisions: opening a case, firing a trigger, firing a timer.

Each step takes the case as it is and an instant read once from the clock, checks the
rules, and returns an `Outcome` (the case after the step, its audit events, the timers to
arm and cancel, the notices). Nothing here touches a database: storage commits an
Outcome in one transaction, so a refused step changes nothing and a committed one is
whole.

Deadlines follow the case's state: a deadline *runs* while the case is in one of its
`running_in` states. Starting it computes its instant from its rule and anchor and arms
one timer per rung of its ladder; leaving those states ends it and cancels the pending
rungs; coming back (e.g. after 退回重办) resumes it with the same instant. A rung
escalates and notifies once per deadline; a rung's trigger (e.g. `expire`) fires
whenever the rung falls due while its trigger is allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from duban.engine.allowed import human_triggers, may_fire
from duban.engine.calendar import WorkingCalendar
from duban.engine.deadlines import Deadline, compute_deadline, parse_rule, shift
from duban.engine.definition import FROM_CASE, HUMAN_ROLES, DeadlineSpec
from duban.engine.guards import Attempt
from duban.engine.model import DONE, ENDED, RUNNING, Case, DeadlineState, Event, Notice, Outcome, TimerSpec
from duban.engine.schedules import check_schedule, is_schedule, next_due
from duban.engine.timeliness import co_unit_refusal, current_due, lead_only
from duban.engine.workflow import MILESTONE_PREFIX, MILESTONES_KEY, PROGRESS, REPORT_KEY, Workflow
from duban.errors import (
    GuardRejectedError,
    PermissionDeniedError,
    TransitionNotAllowedError,
    UsageError,
)
from duban.present.labels import rung_line

OPENER_ROLES = ("office", "leader")
# The audit actions of a rung that fired: it escalated (and notified), or a later rung of the
# same deadline had also fallen due, so it only raised the level (SPEC §16 "Overtaken rungs").
ESCALATE, OVERTAKEN = "escalate", "overtaken"
# Operations every workflow has (SPEC §4 preamble), handled by duban.engine.operations.
SHARED_OPERATIONS = ("request_extension", "approve_extension", "refuse_extension", "suspend", "resume")


@dataclass(frozen=True)
class Actor:
    """Who acts: a user of the directory, or the scheduler."""

    name: str
    role: str
    unit: str | None = None


SYSTEM = Actor("system", "system")


@dataclass(frozen=True)
class DueTimer:
    """A timer storage found due: which rung of which deadline, and when it fell due."""

    id: int
    case_id: int
    deadline: str
    rung: int
    due_at: datetime


class Engine:
    """Applies a workflow's rules to cases, with the office's calendar and zone."""

    def __init__(self, calendar: WorkingCalendar, tz: tzinfo) -> None:
        self.calendar = calendar
        self.tz = tz

    # -- opening ---------------------------------------------------------------------
    def open_case(
        self,
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
            raise UsageError("--title must not be empty")
        if not lead_unit.strip():
            raise UsageError("--unit (the lead unit) must not be empty")
        if lead_unit in co_units or len(set(co_units)) != len(co_units):
            raise UsageError("--co-unit: each co-unit once, and not the lead unit")
        self._check_fields(wf, values)
        uses_due = any(d.rule == FROM_CASE for d in wf.spec.deadlines.values())
        if due is None and uses_due:
            raise UsageError(f"workflow '{wf.name}' needs --due (e.g. 2027-05-31, 15wd, 3mo, 5h)")
        if due is not None and not uses_due:
            raise UsageError(f"workflow '{wf.name}' takes no --due: its deadlines come from its rules")
        if due is not None:
            parse_rule(due, self.tz)  # a malformed rule is a usage error before anything else
        duties = self._duties(wf, milestones, report, now)
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
        self._sync_deadlines(wf, case, now, out)
        main = wf.spec.main_deadline
        if main and main in case.deadlines and case.deadlines[main].due_at <= now:
            raise UsageError(f"--due {due}: the due date is already past (now {now.astimezone(self.tz):%Y-%m-%d %H:%M})")
        return out

    def _duties(self, wf: Workflow, milestones: Sequence[tuple[str, str]], report: str | None,
                now: datetime) -> dict[str, Any]:
        """Check the milestones and report schedule given at opening; what the case keeps of them."""
        kept: dict[str, Any] = {}
        if milestones:
            if wf.spec.milestones is None:
                raise UsageError(f"workflow '{wf.name}' has no milestones (--milestone)")
            for day, title in milestones:
                rule = parse_rule(day, self.tz)
                if rule.unit != "date" or not title.strip():
                    raise UsageError(f"--milestone {day}={title}: use DATE=TITLE, e.g. 2027-03-31=完成方案编制")
                if compute_deadline(rule, now, self.calendar, self.tz).due_at <= now:
                    raise UsageError(f"--milestone {day}: the date is already past")
            kept[MILESTONES_KEY] = [{"due": day, "title": title.strip()} for day, title in milestones]
        if report is not None:
            if wf.spec.reports is None:
                raise UsageError(f"workflow '{wf.name}' has no progress reports (--report)")
            kept[REPORT_KEY] = check_schedule(report)
        return kept

    def _check_fields(self, wf: Workflow, values: dict[str, str]) -> None:
        for key, value in values.items():
            field = wf.spec.fields.get(key)
            if field is None or not field.settable:
                allowed = ", ".join(k for k, f in wf.spec.fields.items() if f.settable) or "none"
                raise UsageError(f"--set {key}=…: workflow '{wf.name}' has no field '{key}' (fields: {allowed})")
            if field.values is not None and value not in field.values:
                raise UsageError(f"--set {key}={value}: allowed values: {', '.join(field.values)}")

    # -- human triggers -----------------------------------------------------------------
    def fire(
        self,
        wf: Workflow,
        case: Case,
        trigger: str,
        *,
        actor: Actor,
        note: str = "",
        values: dict[str, str] | None = None,
        now: datetime,
    ) -> Outcome:
        """Fire `trigger` on `case` as a person; raises a RefusedError subclass if not allowed."""
        values = dict(values or {})
        if actor.role not in HUMAN_ROLES:
            raise PermissionDeniedError(f"'{actor.name}' is not a person: only the scheduler acts as system")
        assert case.id is not None
        from duban.engine.case_notes import CASE_NOTES

        if trigger in CASE_NOTES:  # before the closed check: a closed case may still be watched
            from duban.engine.case_notes import run_case_note

            return run_case_note(case, trigger, actor, note, values, now)
        if case.closed_at is not None:
            raise TransitionNotAllowedError(case.id, trigger, case.state, [])
        if trigger in SHARED_OPERATIONS:
            from duban.engine.operations import run_shared_operation

            return run_shared_operation(self, wf, case, trigger, actor, note, values, now)
        if not may_fire(wf, case, trigger):
            human = self.human_triggers(wf, case)
            described = [f"{t} ({'/'.join(roles)})" for t, roles in human]
            raise TransitionNotAllowedError(case.id, trigger, "suspended" if case.suspended else case.state, described)
        candidates = wf.transitions_from(case.state, trigger)
        roles = sorted({r for t in candidates for r in t.roles})
        if actor.role not in roles:
            raise PermissionDeniedError(
                f"user '{actor.name}' ({actor.role}) may not fire '{trigger}'; allowed roles: {', '.join(roles)}"
            )
        if actor.role == "unit" and actor.unit not in case.units():
            raise PermissionDeniedError(
                f"user '{actor.name}' of unit '{actor.unit}' may not act on case {case.id}: "
                f"its units are {', '.join(case.units())}"
            )
        if actor.role == "unit" and actor.unit != case.lead_unit and lead_only(wf, case.state, trigger):
            raise PermissionDeniedError(co_unit_refusal(case, trigger, actor.name, actor.unit))
        settable = sorted({k for t in candidates for k in t.sets})
        for key in values:
            if key not in settable:
                raise UsageError(f"--set {key}=…: '{trigger}' takes {', '.join(settable) or 'no --set values'}")
        return self._transition(wf, case, trigger, actor, note, values, now, now, values)

    def human_triggers(self, wf: Workflow, case: Case) -> list[tuple[str, tuple[str, ...]]]:
        """What people may fire now, with the roles that may (`duban.engine.allowed`)."""
        return human_triggers(wf, case)

    def _transition(
        self, wf: Workflow, case: Case, trigger: str, actor: Actor, note: str,
        values: dict[str, str], now: datetime, logical: datetime, event_data: dict[str, Any],
    ) -> Outcome:
        from_state = case.state
        attempt = Attempt(case=case, trigger=trigger, actor=actor.name, role=actor.role, note=note, values=values)
        if not wf.machine.events[trigger].trigger(case, attempt=attempt):
            guard, _ = attempt.failures[0]
            raise GuardRejectedError(guard, "; ".join(dict.fromkeys(m for _, m in attempt.failures)))
        assert attempt.taken is not None
        taken = wf.spec.transitions[attempt.taken]
        out = Outcome(case)
        if taken.reassigns and values.get("unit", "").strip() and values["unit"].strip() != case.lead_unit:
            new_lead = values["unit"].strip()
            case.data.setdefault("previous_units", []).append(case.lead_unit)
            case.co_units = [u for u in case.co_units if u != new_lead]
            case.lead_unit, out.units_changed = new_lead, True
        case.data.update(values)
        case.data.update(taken.record)
        if taken.escalate_to:
            case.escalation_level = max(case.escalation_level, taken.escalate_to)
        out.events.append(
            Event("fire", actor.name, actor.role, now, trigger=trigger, from_state=from_state,
                  to_state=case.state, note=note, data=dict(event_data))
        )
        self._sync_deadlines(wf, case, logical, out, trigger=trigger, values=values)
        return out

    # -- timers ----------------------------------------------------------------------
    def fire_timer(self, wf: Workflow, case: Case, timer: DueTimer, now: datetime) -> Outcome:
        """Fire one rung of a deadline's ladder: escalate and notify once, fire its trigger if allowed.

        A rung a catch-up fires after a later rung of the same deadline has also fallen due
        (a yellow card after the due instant passed) is *overtaken* (SPEC §16): the level
        still rises and the audit event says so, but it sends no notice — the later rung's
        does. Not when the rung's own trigger ends the deadline: then no later rung comes."""
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
        overtaken_by = self._overtaken_by(wf, deadline, timer.rung, now) if escalates else None
        if escalates:
            deadline.fired_rungs.append(timer.rung)
            if rung.level is not None:
                case.escalation_level = max(case.escalation_level, rung.level)
        level = case.escalation_level
        sub, trigger = None, rung.trigger
        if trigger and trigger in wf.allowed_triggers(case.state):
            which = {"deadline": timer.deadline, "rung": timer.rung, "timer_due_at": timer.due_at.isoformat()}
            sub = self._transition(wf, case, trigger, SYSTEM, f"{label}：{rung.label}", {}, now, timer.due_at, which)
        if deadline.status != RUNNING:
            overtaken_by = None
        if escalates:
            self._escalate(wf, case, deadline, timer, label, state, before, level, overtaken_by, now, out)
        if sub is not None and trigger:
            out.events.extend(sub.events)
            out.arm.extend(sub.arm)
            out.cancel.extend(sub.cancel)
            out.fired.append(f"案件 {case.id} {wf.trigger_label(trigger)} → {wf.state_label(case.state)}")
        if timer.deadline == PROGRESS and period_end:
            self._next_period(wf, case, deadline, timer, now, out)
        return out

    def _escalate(self, wf: Workflow, case: Case, deadline: DeadlineState, timer: DueTimer, label: str, state: str,
                  before: int, level: int, overtaken_by: int | None, now: datetime, out: Outcome) -> None:
        """The audit event of a rung, and its notices unless a later rung overtook it."""
        rung = wf.rung(timer.deadline, timer.rung)
        notice = rung.notice if overtaken_by is None else None
        recipients = self._recipients(case, notice.to) if notice else []
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
            due_local = deadline.due_at.astimezone(self.tz)
            title = f"{notice.kind}：{case.title}（{label} {due_local:%Y-%m-%d %H:%M}）"
            out.notices.extend(Notice(notice.kind, r, rung.level, title, now) for r in recipients)
        shown_level = level if rung.level is not None else None
        out.fired.append(rung_line(case.id, label, rung.label, shown_level, notice.kind if notice else None, recipients)
                         + suffix)

    def _overtaken_by(self, wf: Workflow, deadline: DeadlineState, index: int, now: datetime) -> int | None:
        """The latest later rung of the deadline that has also fallen due by ``now``, if any."""
        def instant(i: int) -> datetime:
            return shift(deadline.due_at, wf.offset(deadline.name, i), self.calendar, self.tz).due_at

        mine = instant(index)
        later = [(instant(i), i) for i in range(len(wf.rungs_of(deadline.name))) if i != index]
        due = [(at, i) for at, i in later if mine < at <= now]
        return max(due)[1] if due else None

    def _next_period(self, wf: Workflow, case: Case, d: DeadlineState, timer: DueTimer, now: datetime,
                     out: Outcome) -> None:
        """A report period ended: record whether the report came, and start the next period."""
        reported = d.data_reported
        ended = d.due_at
        d.anchor_at, d.due_at = ended, next_due(d.rule, ended, self.tz)
        d.fired_rungs, d.missed, d.data_reported = [], False, False
        out.arm.extend(self.rung_timers(wf, d, range(len(wf.rungs_of(d.name)))))
        out.events.append(Event(
            "report_period", SYSTEM.name, SYSTEM.role, now, from_state=case.state, to_state=case.state,
            note="进度报告已报送" if reported else "进度报告缺报",
            data={"deadline": d.name, "rung": timer.rung, "timer_due_at": timer.due_at.isoformat(),
                  "period_end": ended.isoformat(), "reported": reported, "next_due": d.due_at.isoformat()},
        ))
        if reported:
            out.fired.append(f"案件 {case.id} 进度报告已按期报送，下次报送期限 {d.due_at.astimezone(self.tz):%Y-%m-%d}")

    def _recipients(self, case: Case, to: Sequence[str]) -> list[str]:
        out: list[str] = []
        for r in to:
            out.extend([case.lead_unit] if r == "lead_unit" else case.co_units if r == "co_units" else [r])
        return out

    # -- deadlines -------------------------------------------------------------------
    def _sync_deadlines(self, wf: Workflow, case: Case, at: datetime, out: Outcome, trigger: str | None = None,
                        values: dict[str, str] | None = None) -> None:
        """Start, resume or end each deadline to match the case's new state, fields and trigger."""
        final = wf.is_final(case.state)
        for name, spec in wf.deadline_specs(case.data).items():
            current = case.deadlines.get(name)
            if current is not None and current.status == RUNNING and self._met(wf, name, spec, trigger, values or {}):
                if name == PROGRESS:  # this period's report is in; the period still ends on its date
                    current.data_reported = True
                    current.fired_rungs = list(range(len(wf.rungs_of(name))))
                    out.cancel.append(name)
                    out.arm.extend(self.rung_timers(wf, current, [self._period_end_rung(wf, name)]))
                    continue
                current.status, current.ended_at = DONE, at
                out.cancel.append(name)
                continue
            should_run = not final and case.state in spec.running_in and wf.spec.matches(case.data, spec.when)
            if current is not None and current.status == RUNNING and not should_run:
                current.status, current.ended_at = ENDED, at
                out.cancel.append(name)
            elif should_run and (current is None or current.status == ENDED):
                if current is None or spec.restart_on_reentry:
                    current = self._start(wf, case, name, at)
                    case.deadlines[name] = current
                else:
                    current.status, current.ended_at = RUNNING, None
                out.arm.extend(self.rung_timers(wf, current, self.pending_rungs(wf, current)))
        if final and case.closed_at is None:
            case.closed_at = at
        case.due_at = current_due(wf, case)

    @staticmethod
    def _met(wf: Workflow, name: str, spec: DeadlineSpec, trigger: str | None, values: dict[str, str]) -> bool:
        """Did this trigger meet the deadline (its `ends_on`, a milestone's or a report's trigger)?"""
        if trigger is None:
            return False
        if trigger in spec.ends_on:
            return True
        if name.startswith(MILESTONE_PREFIX) and wf.spec.milestones is not None:
            return trigger == wf.spec.milestones.met_by and values.get("milestone") == name.removeprefix(MILESTONE_PREFIX)
        return name == PROGRESS and wf.spec.reports is not None and trigger == wf.spec.reports.met_by

    @staticmethod
    def _period_end_rung(wf: Workflow, name: str) -> int:
        return next(i for i in range(len(wf.rungs_of(name))) if wf.offset(name, i).amount == 0)

    def _start(self, wf: Workflow, case: Case, name: str, at: datetime) -> DeadlineState:
        spec = wf.deadline_specs(case.data)[name]
        rule = next((v.rule for v in spec.variants if wf.spec.matches(case.data, v.when)), spec.rule)
        rule_text = case.due_rule if rule == FROM_CASE else rule
        assert rule_text is not None
        anchor = case.opened_at if spec.anchor == "opened" else at
        deadline = self.compute(rule_text, anchor)
        return DeadlineState(name, rule_text, anchor, deadline.due_at, deadline.approximate)

    def compute(self, rule: str, anchor: datetime) -> Deadline:
        """A rule's instant from its anchor: a deadline rule, or a report schedule's next period end."""
        if is_schedule(rule):
            return Deadline(next_due(rule, anchor, self.tz), False)
        return compute_deadline(parse_rule(rule, self.tz), anchor, self.calendar, self.tz)

    @staticmethod
    def pending_rungs(wf: Workflow, deadline: DeadlineState) -> list[int]:
        """Rungs still to come: those not fired yet, and those whose trigger must fire again
        (e.g. `expire` after a report was rejected past the due date)."""
        rungs = range(len(wf.rungs_of(deadline.name)))
        return [i for i in rungs if i not in deadline.fired_rungs or wf.rung(deadline.name, i).trigger
                or (deadline.name == PROGRESS and wf.offset(deadline.name, i).amount == 0)]

    def rung_timers(self, wf: Workflow, deadline: DeadlineState, rungs: Sequence[int]) -> list[TimerSpec]:
        """The timers of the given rungs of a deadline, from its current instant."""
        out = []
        for i in rungs:
            when = shift(deadline.due_at, wf.offset(deadline.name, i), self.calendar, self.tz)
            out.append(TimerSpec(deadline.name, i, when.due_at, when.approximate or deadline.approximate))
        return out

    def recompute(
        self, wf: Workflow, case: Case, now: datetime, reason: str, approximate_timers: frozenset[str] = frozenset()
    ) -> Outcome | None:
        """Recompute running deadlines the new calendar covers: those computed as approximate,
        and those whose ladder timers were (named in `approximate_timers`). None if none."""
        out = Outcome(case)
        for name, d in case.deadlines.items():
            # an ended deadline may resume (退回重办), so it is recomputed too; a met one never runs again
            if d.status == DONE or not (d.approximate or name in approximate_timers):
                continue
            fresh = self.compute(d.rule, d.anchor_at)
            old = d.due_at
            if d.original_due_at is None:  # an extension or suspension moved it: keep its instant
                d.due_at = fresh.due_at
            d.approximate = fresh.approximate and d.original_due_at is None
            if d.status == RUNNING:
                out.cancel.append(name)
                out.arm.extend(self.rung_timers(wf, d, self.pending_rungs(wf, d)))
            out.events.append(
                Event("recompute", SYSTEM.name, SYSTEM.role, now, from_state=case.state, to_state=case.state,
                      note=reason, data={"deadline": name, "from": old.isoformat(), "to": d.due_at.isoformat(),
                                         "approximate": d.approximate, "timers_rescheduled": d.status == RUNNING})
            )
        if not out.events:
            return None
        case.due_at = current_due(wf, case)
        return out

