"""Whether a case's deadlines were met, which one is running, and whose move it is (SPEC §16).

One set of rules shared by the engine (the case's `due_at`), the case views
(`was_overdue`) and the reports (on time or late, 红牌超期):

* **Every deadline counts.** A case is on time only if every deadline it is judged by —
  main, sign-for, press conference, rework (重办), milestones, plan — was met or ended
  before its due instant. Recurring progress-report periods are not deadlines of the case's
  completion (each period's 缺报 is recorded as it ends); the office's own deadlines (派单,
  回访) are the office's, not the lead unit's.
* **The deadline shown is the one running**: `due_at` is the running completion deadline
  (the main one, or one marked ``completion: true`` such as 重办时限) nearest to falling due.
* **The lead unit moves the case**: the triggers that move a case are its lead unit's; a
  co-unit (配合单位) sees the case and may add progress notes, but cannot move it.

Pure: no database, no clock. Instants are aware datetimes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from duban.engine.model import RUNNING, Case, DeadlineState
from duban.engine.workflow import MILESTONE_PREFIX, PROGRESS, Workflow

if TYPE_CHECKING:
    from duban.engine.definition import DeadlineSpec

# SPEC §16: these are the lead unit's whatever they do to the state; so is any other unit
# trigger that moves the case to another state.
LEAD_TRIGGERS = frozenset({"accept", "report", "reply", "submit_plan", "request_extension", "return"})


# -- met or missed ------------------------------------------------------------------------
def lateness(d: DeadlineState, at: datetime) -> timedelta | None:
    """How late deadline ``d`` was, as it stood at ``at``; None if it was not (yet) late.

    Measured from the stored instants, not from fired timers, so it is right before `tick`
    has run and for a past instant: the lateness ends when the deadline ended (met, or left
    its states) if that was by ``at``, else at ``at``."""
    ended = d.status != RUNNING and d.ended_at is not None and d.ended_at <= at
    end = d.ended_at if ended and d.ended_at is not None else at
    return end - d.due_at if end > d.due_at else None


def unmet_past_due(d: DeadlineState, at: datetime) -> bool:
    """Still running at ``at`` with its due instant passed (a red card at that instant)."""
    running_then = d.status == RUNNING or d.ended_at is None or d.ended_at > at
    return running_then and d.due_at < at


def was_missed(d: DeadlineState) -> bool:
    """Missed at some time: a rung at or after the due instant fired, or it ended after it."""
    return d.missed or (d.status != RUNNING and d.ended_at is not None and d.ended_at > d.due_at)


def completion_counted(name: str) -> bool:
    """Deadlines a case's timeliness is judged by: all but the recurring report periods."""
    return name != PROGRESS


def was_overdue(case: Case) -> bool:
    """True once any of the case's deadlines was missed, kept after it closes (曾超期)."""
    return any(was_missed(d) for name, d in case.deadlines.items() if completion_counted(name))


# -- whose deadline -------------------------------------------------------------------------
def owed_by_unit(wf: Workflow, name: str, spec: DeadlineSpec | None) -> bool:
    """Whether the lead unit owes deadline ``name``: a unit's trigger meets it (its
    ``ends_on``, a milestone's ``met_by``) or takes the case out of the states it runs in.
    The office's own deadlines (派单 dispatch, 回访 revisit) are met by office triggers only."""
    if not completion_counted(name):
        return False
    if spec is None:
        return True  # a deadline the definition no longer names: judged, as before
    met_by = list(spec.ends_on)
    if name.startswith(MILESTONE_PREFIX) and wf.spec.milestones is not None:
        met_by.append(wf.spec.milestones.met_by)
    if met_by:
        return any("unit" in t.roles for trig in met_by for t in wf.spec.transition_for(trig))
    running = set(spec.running_in)
    return any("unit" in t.roles and t.dest not in running and running.intersection(t.sources)
               for t in wf.spec.transitions)


def judged(wf: Workflow, case: Case) -> list[DeadlineState]:
    """The deadlines the lead unit's timeliness on this case is judged by."""
    specs = wf.deadline_specs(case.data)
    return [d for name, d in case.deadlines.items() if owed_by_unit(wf, name, specs.get(name))]


# -- the deadline shown -----------------------------------------------------------------------
def _completion(wf: Workflow, case: Case) -> list[DeadlineState]:
    specs = wf.deadline_specs(case.data)
    main = wf.spec.main_deadline
    return [d for name, d in case.deadlines.items() if name == main or (name in specs and specs[name].completion)]


def _nearest_running(candidates: list[DeadlineState]) -> DeadlineState | None:
    running = [d for d in candidates if d.status == RUNNING]
    return min(running, key=lambda d: (d.due_at, d.name)) if running else None


def running_completion(wf: Workflow, case: Case) -> DeadlineState | None:
    """The running completion deadline nearest to falling due (what an extension moves)."""
    return _nearest_running(_completion(wf, case))


def current_due(wf: Workflow, case: Case) -> datetime | None:
    """The case's 办结时限: the running completion deadline nearest to falling due; when none
    runs (closed, or back with the office), the one that ran last; before any has started,
    what the case had."""
    candidates = _completion(wf, case)  # built once: this runs on every step
    running = _nearest_running(candidates)
    if running is not None:
        return running.due_at
    if candidates:
        return max(candidates, key=lambda d: (d.ended_at or d.anchor_at, d.anchor_at)).due_at
    return case.due_at


# -- who may move the case ----------------------------------------------------------------------
def lead_only(wf: Workflow, state: str, trigger: str) -> bool:
    """Whether only the lead unit (not a co-unit) may fire ``trigger`` from ``state``."""
    if trigger in LEAD_TRIGGERS:
        return True
    return any("unit" in t.roles and t.dest != state for t in wf.transitions_from(state, trigger))


def co_unit_refusal(case: Case, trigger: str, user: str, unit: str | None) -> str:
    """Why a co-unit (配合单位) may not fire a trigger that is the lead unit's."""
    return (f"'{trigger}' is the lead unit's: user '{user}' of co-unit (配合单位) '{unit}' sees case {case.id} "
            f"but cannot move it; its lead unit (牵头单位) is '{case.lead_unit}'")
