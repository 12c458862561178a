"""Facts about a case at an instant, shared by the reports.

Lateness is measured from the stored deadlines, not from the escalation timers: a
deadline is late by how far the instant it ended (or the instant asked about, while it
runs) is past its due instant. So a report is right even when `tick` has not run, and a
historical period is judged as it stood at its end. An approved extension moved the due
instant, so lateness counts from the new date (没有办理延期的按原定时间考核).

Every deadline counts (SPEC §16): a case is judged by every deadline its lead unit owes —
main, sign-for, press conference, rework (重办), milestones, plan — not only its main one
(`duban.engine.timeliness`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from duban.engine.calendar import WorkingCalendar
from duban.engine.model import RUNNING, Case, DeadlineState
from duban.engine.timeliness import lateness, owed_by_unit, unmet_past_due
from duban.engine.workflow import MILESTONE_PREFIX, PROGRESS, Workflow

if TYPE_CHECKING:
    from duban.engine.definition import DeadlineSpec

ACCOUNTABILITY = "accountability"  # the closing state of a decision, in every workflow (SPEC §3)
Events = dict[int, list[dict[str, Any]]]  # audit events per case id, in sequence order
HOLD = "hold_accountable"
SIGN_FOR = "sign_for"
RUNG_ACTIONS = ("escalate", "overtaken")  # a ladder rung that fired; overtaken ones sent no notice


@dataclass(frozen=True)
class CaseView:
    """A case with the workflow version it is pinned to (for labels and its deadlines)."""

    case: Case
    wf: Workflow

    @property
    def id(self) -> int:
        assert self.case.id is not None
        return self.case.id


Batch = tuple[Sequence[CaseView], Events]  # some cases of a report (in any order) and their events


def judged_deadlines(v: CaseView) -> list[DeadlineState]:
    """The deadlines the lead unit's timeliness on a case is judged by: every one it owes
    (`duban.engine.timeliness.judged`, asked once per workflow and deadline name)."""
    owes: dict[str, bool] = v.wf.memo.setdefault("owed_by_unit", {})  # per name, of this definition
    found = []
    specs: dict[str, DeadlineSpec] | None = None
    for name, d in v.case.deadlines.items():
        if name.startswith(MILESTONE_PREFIX) or name == PROGRESS:  # the case's own duties: specs from its data
            specs = v.wf.deadline_specs(v.case.data) if specs is None else specs
            owed = owed_by_unit(v.wf, name, specs.get(name))
        elif name in owes:
            owed = owes[name]
        else:  # the definition's own spec (or none): the same for every case of the workflow
            owed = owes[name] = owed_by_unit(v.wf, name, v.wf.spec.deadlines.get(name))
        if owed:
            found.append(d)
    return found


def case_lateness(v: CaseView, at: datetime) -> timedelta | None:
    """The most any judged deadline was late, as it stood at ``at``."""
    lates = [late for d in judged_deadlines(v) if (late := lateness(d, at)) is not None]
    return max(lates) if lates else None


def missed_in(v: CaseView, start: datetime | None, as_of: datetime) -> tuple[DeadlineState, timedelta] | None:
    """The judged deadline that was late for longest while passed unmet some time in
    [start, as_of] (a 红牌 of that period), with how late it was by as_of or when it ended."""
    found: list[tuple[timedelta, str, DeadlineState]] = []
    for d in judged_deadlines(v):
        late = lateness(d, as_of)
        if late is None:
            continue
        late_until = d.due_at + late  # when it was met or ended, or as_of
        if start is None or late_until > start:
            found.append((late, d.name, d))
    if not found:
        return None
    late, _, d = max(found, key=lambda f: (f[0], f[1]))
    return d, late


def open_at(case: Case, at: datetime) -> bool:
    return case.opened_at <= at and (case.closed_at is None or case.closed_at > at)


def overdue_at(v: CaseView, at: datetime) -> bool:
    """Open at ``at`` with a judged deadline passed and still unmet then (超期未办结)."""
    return open_at(v.case, at) and any(unmet_past_due(d, at) for d in judged_deadlines(v))


def held_accountable(case: Case) -> bool:
    return case.state == ACCOUNTABILITY


def closed_on_time(v: CaseView) -> bool:
    """Closed normally (not by an accountability decision) with every judged deadline met in time."""
    c = v.case
    return c.closed_at is not None and not held_accountable(c) and case_lateness(v, c.closed_at) is None


def sign_for_outcome(case: Case, at: datetime) -> bool | None:
    """Whether the case was signed for in time, as it stood at ``at``: None while still open to
    sign (not due, not signed) or when the workflow has no sign-for deadline."""
    d = case.deadlines.get(SIGN_FOR)
    if d is None:
        return None
    settled = (d.status != RUNNING and d.ended_at is not None and d.ended_at <= at) or d.due_at < at
    return lateness(d, at) is None if settled else None


def satisfaction(case: Case) -> bool | None:
    """The revisit verdict (回访) of a closed case: True satisfied, False not, None unrated."""
    if case.closed_at is None or "satisfied" not in case.data:
        return None
    return str(case.data["satisfied"]).strip().lower() in ("yes", "true", "1", "是", "满意", "satisfied")


def describe_late(late: timedelta) -> str:
    """A lateness as people say it: 3天4小时, 5小时20分, 15分."""
    minutes = int(late.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}天" if days else "", f"{hours}小时" if hours else "", f"{mins}分" if mins and not days else ""]
    return "".join(parts) or "不足1分"


def late_working_days(d: DeadlineState, late: timedelta, calendar: WorkingCalendar, tz: tzinfo) -> int:
    """Working days between the due day and the day the lateness ended (due day not counted)."""
    end = d.due_at + late
    count, _ = calendar.working_days_between(d.due_at.astimezone(tz).date(), end.astimezone(tz).date())
    return count


def level_at(events: list[dict[str, Any]], at: datetime) -> int:
    """The escalation level a case had reached by ``at``, replayed from its events."""
    level = 0
    for e in events:
        if e["at"] > at:
            continue
        if e["action"] in RUNG_ACTIONS:
            level = max(level, int(e["data"].get("level") or 0))
        elif e.get("trigger") == HOLD:
            level = 5
    return level


def raised_level(e: dict[str, Any]) -> bool:
    """A rung that raised the case's escalation level (升级督办); reminders (报送提醒, 催签) do not."""
    return e["action"] in RUNG_ACTIONS and int(e["data"].get("level") or 0) > int(e["data"].get("level_before") or 0)
