"""Deadlines follow the case's state: they start, resume and end with it, and arm the
timers of their ladders.

A deadline *runs* while the case is in one of its `running_in` states. Starting it
computes its instant from its rule and anchor and arms one timer per rung of its ladder;
leaving those states ends it and cancels the pending rungs; coming back (e.g. after
退回重办) resumes it with the same instant. A deadline is *met* by a trigger it ends on (a
milestone's or a progress report's by its own trigger). A new calendar recomputes the
deadlines computed without one (`recompute`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from duban.engine.actors import SYSTEM
from duban.engine.calendar import WorkingCalendar
from duban.engine.deadlines import FROM_CASE, Deadline, compute_deadline, parse_rule, shift
from duban.engine.model import DONE, ENDED, RUNNING, Case, DeadlineState, Event, Outcome, TimerSpec
from duban.engine.schedules import is_schedule, next_due
from duban.engine.timeliness import current_due
from duban.engine.workflow import MILESTONE_PREFIX, PROGRESS, Workflow

if TYPE_CHECKING:
    from duban.engine.definition import DeadlineSpec


class Deadlines:
    """A case's deadlines kept in step with it, in the office's calendar and zone."""

    def __init__(self, calendar: WorkingCalendar, tz: tzinfo) -> None:
        self.calendar = calendar
        self.tz = tz

    def sync(self, wf: Workflow, case: Case, at: datetime, out: Outcome, trigger: str | None = None,
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
