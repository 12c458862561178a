"""The case and what one step of the engine produces.

A `Case` is a plain object: its `state` field *is* the state-machine state (the shared
Machine sets it), so restoring a case from storage costs nothing. A step — opening,
a human trigger, a timer firing — returns an `Outcome`: the case after the step plus
the timers, audit events and notices storage must write in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# A deadline runs while the case is in one of its states; it has *ended* when the case left
# them (it resumes if the case comes back) and is *done* when a trigger met it (for good).
RUNNING, ENDED, DONE = "running", "ended", "done"


@dataclass
class DeadlineState:
    """A named deadline of one case: when it falls due and whether it is running or missed."""

    name: str
    rule: str
    anchor_at: datetime
    due_at: datetime
    approximate: bool
    status: str = RUNNING
    missed: bool = False
    ended_at: datetime | None = None
    fired_rungs: list[int] = field(default_factory=list)
    original_due_at: datetime | None = None  # set when an extension or suspension moves it
    data_reported: bool = False  # a recurring report: this period's report is in

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "anchor_at": self.anchor_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "approximate": self.approximate,
            "status": self.status,
            "missed": self.missed,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "fired_rungs": list(self.fired_rungs),
            "original_due_at": self.original_due_at.isoformat() if self.original_due_at else None,
            "reported": self.data_reported,
        }

    @classmethod
    def from_json(cls, name: str, raw: dict[str, Any]) -> DeadlineState:
        def ts(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            name=name,
            rule=raw["rule"],
            anchor_at=datetime.fromisoformat(raw["anchor_at"]),
            due_at=datetime.fromisoformat(raw["due_at"]),
            approximate=raw["approximate"],
            status=raw["status"],
            missed=raw["missed"],
            ended_at=ts(raw.get("ended_at")),
            fired_rungs=list(raw.get("fired_rungs", [])),
            original_due_at=ts(raw.get("original_due_at")),
            data_reported=raw.get("reported", False),
        )


@dataclass
class Case:
    """One supervision item, complaint, rectification, opinion or proposal."""

    workflow: str
    workflow_version: int
    state: str
    title: str
    lead_unit: str
    co_units: list[str]
    opened_at: datetime
    opened_by: str
    id: int | None = None
    due_rule: str | None = None  # the `--due` given at opening, for `from_case` deadlines
    due_at: datetime | None = None  # the main deadline's instant, kept for lists and reports
    closed_at: datetime | None = None
    escalation_level: int = 0
    suspended: bool = False
    deadlines: dict[str, DeadlineState] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 1

    @property
    def overdue(self) -> bool:
        """True while any deadline has passed unmet, whatever the state (SPEC §6.2)."""
        return any(d.status == RUNNING and d.missed for d in self.deadlines.values())

    @property
    def next_due_at(self) -> datetime | None:
        """The nearest running deadline's instant (None when closed or none runs): the
        to-do's order, nearest first (`web.cards.due_sort_key`), stored so an index serves it."""
        if self.closed_at is not None:
            return None
        return min((d.due_at for d in self.deadlines.values() if d.status == RUNNING), default=None)

    def units(self) -> list[str]:
        return [self.lead_unit, *self.co_units]

    def rename_unit(self, old: str, new: str) -> None:
        """A directory rename (`unit rename`, audited as `unit_renamed` on the case): the case's
        current lead and co-units take the new name; what it recorded (previous units, values
        given at a dispatch) stays as it was, as the audit log does."""
        if self.lead_unit == old:
            self.lead_unit = new
        self.co_units = [new if u == old else u for u in self.co_units]

    def deadlines_json(self) -> dict[str, Any]:
        return {name: d.to_json() for name, d in self.deadlines.items()}


@dataclass(frozen=True)
class TimerSpec:
    """A timer to arm: one rung of one deadline's ladder."""

    deadline: str
    rung: int
    due_at: datetime
    approximate: bool


@dataclass(frozen=True)
class Event:
    """An audit event before storage gives it a sequence number and a hash."""

    action: str
    actor: str
    role: str
    at: datetime
    trigger: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """A message to a unit or role in the outbox (催办通知, 督办通知, 通报 …)."""

    kind: str
    recipient: str
    level: int | None
    title: str
    at: datetime


@dataclass
class Outcome:
    """Everything one step changes; storage commits it in one transaction."""

    case: Case
    events: list[Event] = field(default_factory=list)
    arm: list[TimerSpec] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)  # deadline names whose pending timers end
    units_changed: bool = False  # the lead unit changed (改派): storage rewrites case_units
    notices: list[Notice] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)  # human-readable lines for `tick`
    watch: bool | None = None  # 关注 (True) or 取消关注 (False) by the event's actor; the case row stays as it is
