"""The engine's decisions: opening a case, firing a trigger, firing a timer.

Each step takes the case as it is and an instant read once from the clock, checks the
rules, and returns an `Outcome` (the case after the step, its audit events, the timers to
arm and cancel, the notices). Nothing here touches a database: storage commits an
Outcome in one transaction, so a refused step changes nothing and a committed one is
whole.

`Engine` is the one door: a person's trigger is decided here (who may fire what, on which
case); opening is `duban.engine.opening`, a rung falling due `duban.engine.timers`, the
transition itself `duban.engine.transition`, and the deadlines that follow the case's
state `duban.engine.tracking`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from duban.engine import opening, timers
from duban.engine.actors import HUMAN_ROLES
from duban.engine.actors import SYSTEM as SYSTEM
from duban.engine.actors import Actor as Actor
from duban.engine.allowed import human_triggers, may_fire
from duban.engine.calendar import WorkingCalendar
from duban.engine.deadlines import Deadline
from duban.engine.model import Case, DeadlineState, Outcome, TimerSpec
from duban.engine.opening import OPENER_ROLES as OPENER_ROLES
from duban.engine.timeliness import co_unit_refusal, lead_only
from duban.engine.timers import DueTimer as DueTimer
from duban.engine.tracking import Deadlines
from duban.engine.transition import transition
from duban.engine.wording import takes
from duban.engine.workflow import Workflow
from duban.errors import FieldRef, PermissionDeniedError, TransitionNotAllowedError, UsageError

# Operations every workflow has (SPEC §4 preamble), handled by duban.engine.operations.
SHARED_OPERATIONS = ("request_extension", "approve_extension", "refuse_extension", "suspend", "resume")


class Engine:
    """Applies a workflow's rules to cases, with the office's calendar and zone."""

    def __init__(self, calendar: WorkingCalendar, tz: tzinfo) -> None:
        self.calendar = calendar
        self.tz = tz
        self.deadlines = Deadlines(calendar, tz)

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
        """Open a case in the workflow's initial state and start its deadlines (`duban.engine.opening`)."""
        return opening.open_case(self.deadlines, wf, title=title, lead_unit=lead_unit, co_units=co_units, due=due,
                                 values=values, actor=actor, now=now, milestones=milestones, report=report)

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

            return run_shared_operation(self.deadlines, wf, case, trigger, actor, note, values, now)
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
                raise UsageError(FieldRef(f"data.{key}"), f"=…: '{trigger}' takes ", *takes(settable))
        return transition(self.deadlines, wf, case, trigger, actor, note, values, now, now, values)

    def human_triggers(self, wf: Workflow, case: Case) -> list[tuple[str, tuple[str, ...]]]:
        """What people may fire now, with the roles that may (`duban.engine.allowed`)."""
        return human_triggers(wf, case)

    # -- timers and deadlines ------------------------------------------------------------
    def fire_timer(self, wf: Workflow, case: Case, timer: DueTimer, now: datetime) -> Outcome:
        """Fire one rung of a deadline's ladder (`duban.engine.timers`)."""
        return timers.fire_timer(self.deadlines, wf, case, timer, now)

    def compute(self, rule: str, anchor: datetime) -> Deadline:
        """A rule's instant from its anchor: a deadline rule, or a report schedule's next period end."""
        return self.deadlines.compute(rule, anchor)

    def pending_rungs(self, wf: Workflow, deadline: DeadlineState) -> list[int]:
        """Rungs still to come (`Deadlines.pending_rungs`)."""
        return self.deadlines.pending_rungs(wf, deadline)

    def rung_timers(self, wf: Workflow, deadline: DeadlineState, rungs: Sequence[int]) -> list[TimerSpec]:
        """The timers of the given rungs of a deadline, from its current instant."""
        return self.deadlines.rung_timers(wf, deadline, rungs)

    def recompute(
        self, wf: Workflow, case: Case, now: datetime, reason: str, approximate_timers: frozenset[str] = frozenset()
    ) -> Outcome | None:
        """Recompute the running deadlines a new calendar covers (`Deadlines.recompute`); None if none."""
        return self.deadlines.recompute(wf, case, now, reason, approximate_timers)
