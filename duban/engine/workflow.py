"""A validated workflow definition compiled for use: one shared state machine per version.

The machine is a transitions `Machine(model=None, auto_transitions=False,
send_event=True)` built once per definition version with no models attached; a case is
driven with ``machine.events[trigger].trigger(case, attempt=...)`` (LIBRARIES.md §0):
nothing is bound onto the case, so a case costs no memory in the machine and restoring
one is reading its `state` column. Guards are passed as callables from the allow-list,
never as strings, so transitions never imports a name a file gave it.

The machine is built on first use, and `transitions` and the pydantic spec models are
imported only then: reading a case (`case show`, allowed triggers, labels) never needs
them (README "Performance").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from duban.engine.deadlines import Offset, parse_offset
from duban.engine.guards import GUARDS, Attempt
from duban.engine.schedules import schedule_label

if TYPE_CHECKING:
    from transitions import EventData, Machine

    from duban.engine.definition import DeadlineSpec, RungSpec, TransitionSpec, WorkflowSpec

MILESTONES, REPORTS = "@milestones", "@reports"
MILESTONE_PREFIX, PROGRESS = "milestone_", "progress"
MILESTONES_KEY, REPORT_KEY = "milestones", "report_schedule"  # where a case keeps what the office gave


def _condition(name: str) -> Callable[[EventData], bool]:
    guard = GUARDS[name]

    def check(event: EventData) -> bool:
        attempt: Attempt = event.kwargs["attempt"]
        message = guard(attempt)
        if message is None:
            return True
        attempt.failures.append((name, message))
        return False

    check.__name__ = name
    return check


def _taken(index: int) -> Callable[[EventData], bool]:
    """The last condition of a transition: reached only when every guard passed, so it
    records which of several transitions of one trigger (revisit yes / no …) was taken."""

    def mark(event: EventData) -> bool:
        event.kwargs["attempt"].taken = index
        return True

    return mark


@dataclass
class Workflow:
    """A workflow definition ready to drive cases."""

    spec: WorkflowSpec
    source: str  # the file it was read from, for messages
    raw: dict[str, Any] = field(repr=False)
    offsets: dict[tuple[str, int], Offset] = field(init=False, repr=False)
    _allowed: dict[str, tuple[str, ...]] = field(init=False, repr=False, default_factory=dict)
    _from: dict[tuple[str, str], tuple[TransitionSpec, ...]] = field(init=False, repr=False, default_factory=dict)
    # what pure functions of the definition work out per state, kept with it (it never changes)
    memo: dict[Any, Any] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.offsets = {
            (name, i): parse_offset(rung.at)
            for name in self.spec.deadlines
            for i, rung in enumerate(self.spec.rungs(name))
        }
        for key, duty in ((MILESTONES, self.spec.milestones), (REPORTS, self.spec.reports)):
            if duty is not None:
                for i, rung in enumerate(self.spec.ladder(duty.ladder)):
                    self.offsets[(key, i)] = parse_offset(rung.at)

    @cached_property
    def machine(self) -> Machine:
        """The state machine, built the first time a trigger is fired."""
        from transitions import Machine

        machine = Machine(
            model=None,
            states=list(self.spec.states),
            initial=self.spec.initial,
            auto_transitions=False,
            send_event=True,
        )
        for index, t in enumerate(self.spec.transitions):
            conditions: list[Any] = [_condition(g) for g in t.guards] + [_taken(index)]
            machine.add_transition(t.trigger, list[Any](t.sources), t.dest, conditions=conditions)
        return machine

    @classmethod
    def from_raw(cls, raw: Any, source: str) -> Workflow:
        from duban.engine.definition import load_spec

        return cls(spec=load_spec(raw, source), source=source, raw=raw)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> int:
        return self.spec.version

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical definition (its version number aside): a pinned version
        must never change under a case."""
        body = {k: v for k, v in self.raw.items() if k != "version"}
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def renumbered(self, version: int) -> Workflow:
        """The same definition under another version number (a later revision of an override)."""
        return Workflow.from_raw({**self.raw, "version": version}, self.source)

    def allowed_triggers(self, state: str) -> list[str]:
        """Triggers that may be fired from `state`, in definition order."""
        found = self._allowed.get(state)
        if found is None:  # the definition never changes: worked out once per state (each timer asks)
            # the triggers the machine has a transition for from `state` (its get_triggers)
            possible = {t.trigger for t in self.spec.transitions if state in t.sources}
            found = self._allowed[state] = tuple(dict.fromkeys(
                t.trigger for t in self.spec.transitions if t.trigger in possible))
        return list(found)

    def transitions_from(self, state: str, trigger: str) -> list[TransitionSpec]:
        found = self._from.get((state, trigger))
        if found is None:  # as `allowed_triggers`: every step and every case shown asks, per trigger
            found = self._from[(state, trigger)] = tuple(
                t for t in self.spec.transitions if t.trigger == trigger and state in t.sources)
        return list(found)

    def state_label(self, state: str) -> str:
        key = ("state_label", state)
        found = self.memo.get(key)
        if found is None:  # looked up once per state: a timeline labels two states per event
            spec = self.spec.states.get(state)
            found = self.memo[key] = spec.label if spec else state
        return str(found)

    def trigger_label(self, trigger: str) -> str:
        key = ("trigger_label", trigger)
        found = self.memo.get(key)
        if found is None:
            transitions = self.spec.transition_for(trigger)
            found = self.memo[key] = transitions[0].label if transitions else trigger
        return str(found)

    def is_final(self, state: str) -> bool:
        return self.spec.states[state].final

    def rung(self, deadline: str, index: int) -> RungSpec:
        return self.rungs_of(deadline)[index]

    # -- deadlines of one case: the definition's, plus its milestones and report schedule --
    def duty_key(self, deadline: str) -> str | None:
        if deadline.startswith(MILESTONE_PREFIX) and self.spec.milestones is not None:
            return MILESTONES
        if deadline == PROGRESS and self.spec.reports is not None:
            return REPORTS
        return None

    def rungs_of(self, deadline: str) -> list[RungSpec]:
        key = self.duty_key(deadline)
        if key is None:
            return self.spec.rungs(deadline)
        duty = self.spec.milestones if key == MILESTONES else self.spec.reports
        assert duty is not None
        return self.spec.ladder(duty.ladder)

    def offset(self, deadline: str, index: int) -> Offset:
        return self.offsets[(self.duty_key(deadline) or deadline, index)]

    def deadline_specs(self, data: dict[str, Any]) -> dict[str, DeadlineSpec]:
        """Every deadline a case with these data has, in order."""
        specs = dict(self.spec.deadlines)
        ms = self.spec.milestones
        for i, m in enumerate(data.get(MILESTONES_KEY, []), start=1) if ms else ():
            assert ms is not None
            specs[f"{MILESTONE_PREFIX}{i}"] = self._duty_deadline(
                label=f"{ms.label}：{m['title']}", rule=m["due"], anchor="opened", running_in=ms.running_in,
                ladder=ms.ladder,
            )
        rp = self.spec.reports
        if rp is not None and data.get(REPORT_KEY):
            # no brackets in a label: a notice title puts the label in brackets already
            specs[PROGRESS] = self._duty_deadline(label=f"{rp.label}·{schedule_label(data[REPORT_KEY])}",
                                                  rule=data[REPORT_KEY],
                                                  anchor="entered", running_in=rp.running_in, ladder=rp.ladder)
        return specs

    def _duty_deadline(self, **fields: Any) -> DeadlineSpec:
        """The deadline spec of one of a case's duties (a milestone, its progress reports)."""
        from duban.engine.definition import DeadlineSpec

        return DeadlineSpec(**fields)

    def mermaid(self) -> str:
        """The state diagram as Mermaid `stateDiagram-v2` text, with the Chinese labels."""
        lines = ["stateDiagram-v2", f"    %% {self.spec.label} ({self.name} v{self.version})"]
        for name, st in self.spec.states.items():
            lines.append(f'    state "{st.label} {name}" as {name}')
        lines.append(f"    [*] --> {self.spec.initial}")
        for t in self.spec.transitions:
            roles = "/".join(t.roles)
            guards = f" [{', '.join(t.guards)}]" if t.guards else ""
            for src in t.sources:
                lines.append(f"    {src} --> {t.dest}: {t.trigger} {t.label} ({roles}){guards}")
        for name, st in self.spec.states.items():
            if st.final:
                lines.append(f"    {name} --> [*]")
        return "\n".join(lines)
