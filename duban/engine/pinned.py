"""A pinned workflow definition, read back to show cases without validating it again.

A definition is validated (`duban.engine.definition.load_spec`, pydantic) before the first
case pins it, and its body is stored as it was read. Showing a case (`case show`, `case
list`) only reads labels, transitions and ladders from it; importing pydantic and building
the spec models just for that would cost more than the rest of `duban case show` after
SQLAlchemy (README "Performance"). `PinnedWorkflow.read` wraps the stored body instead:
attribute access with the schema's defaults (`DEFAULTS`), nested as the schema nests
(`NESTED`), and the spec helpers `Workflow`'s methods call, so those work on it unchanged.
A step on a case that exists (`case fire`, a timer firing) runs on it too: the body was
validated before it was pinned, so only opening a case validates a definition
(`Workflow.from_raw`, through the catalog).

tests/unit/test_pinned.py holds it to the schema: for every shipped definition it answers
exactly as the validated spec does (every field, those helpers, every `Workflow` method a
case view uses), and `DEFAULTS` and `NESTED` are the schema's.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, cast

from duban.engine.deadlines import field_value, matches
from duban.engine.workflow import Workflow

if TYPE_CHECKING:
    from duban.engine.definition import DeadlineSpec, RungSpec, TransitionSpec, WorkflowSpec

# The defaults of each spec model in duban.engine.definition; a key left out of a file reads as these.
DEFAULTS: dict[str, dict[str, Any]] = {
    "WorkflowSpec": {"description": "", "main_deadline": None, "deadlines": {}, "ladders": {}, "fields": {},
                     "overrides": None, "milestones": None, "reports": None},
    "StateSpec": {"final": False, "description": ""},
    "NoticeSpec": {},
    "RungSpec": {"level": None, "trigger": None, "notice": None},
    "VariantSpec": {},
    "DeadlineSpec": {"anchor": "entered", "restart_on_reentry": False, "when": {}, "variants": [], "ends_on": [],
                     "completion": False, "source": ""},
    "TransitionSpec": {"guards": [], "sets": [], "record": {}, "reassigns": False, "escalate_to": None},
    "DutySpec": {},
    "FieldSpec": {"values": None, "default": None, "settable": True},
}
# The model the value under each key holds (definition._MODEL_BY_KEY); under KEYED ones, by name.
NESTED = {"states": "StateSpec", "transitions": "TransitionSpec", "deadlines": "DeadlineSpec", "ladders": "RungSpec",
          "fields": "FieldSpec", "ladder": "RungSpec", "variants": "VariantSpec", "milestones": "DutySpec",
          "reports": "DutySpec", "notice": "NoticeSpec"}
KEYED = frozenset({"states", "deadlines", "ladders", "fields"})


class Node:
    """One mapping of a stored definition, read as its spec model shows it."""

    def __init__(self, model: str, raw: dict[str, Any]) -> None:
        self._model = model
        self._raw = raw
        self._read: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._read:
            if name in self._raw:
                value = self._raw[name]
            elif name in DEFAULTS[self._model]:
                value = copy.copy(DEFAULTS[self._model][name])
            else:
                raise AttributeError(f"{self._model} has no field {name!r}")
            model = NESTED.get(name)
            if model is not None:
                value = {k: _node(model, v) for k, v in value.items()} if name in KEYED else _node(model, value)
            self._read[name] = value
        return self._read[name]

    def __repr__(self) -> str:
        return f"{self._model}({self._raw!r})"


class _Transition(Node):
    @property
    def sources(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)


class _Workflow(Node):
    def rungs(self, deadline: str) -> list[RungSpec]:
        return self.ladder(self.deadlines[deadline].ladder)

    def ladder(self, ladder: str | list[RungSpec]) -> list[RungSpec]:
        return cast("list[RungSpec]", self.ladders[ladder] if isinstance(ladder, str) else ladder)

    def transition_for(self, trigger: str) -> list[TransitionSpec]:
        return [t for t in self.transitions if t.trigger == trigger]

    # as WorkflowSpec's: a deadline's `when` and variants, read when a step keeps deadlines in step
    def field_value(self, data: dict[str, Any], key: str) -> str:
        return field_value(self.fields, data, key)

    def matches(self, data: dict[str, Any], when: dict[str, list[str]]) -> bool:
        return matches(self.fields, data, when)


_TYPES: dict[str, type[Node]] = {"TransitionSpec": _Transition, "WorkflowSpec": _Workflow}


def _node(model: str, value: Any) -> Any:
    """A stored value as the model's field holds it: mappings as nodes, lists of them, a ladder's name."""
    if isinstance(value, list):
        return [_node(model, v) for v in value]
    if isinstance(value, dict):
        return _TYPES.get(model, Node)(model, value)
    return value


class PinnedWorkflow(Workflow):
    """A pinned definition for showing cases: a `Workflow` over the stored body, unvalidated."""

    @classmethod
    def read(cls, raw: dict[str, Any], source: str) -> PinnedWorkflow:
        return cls(spec=cast("WorkflowSpec", _Workflow("WorkflowSpec", raw)), source=source, raw=raw)

    def _duty_deadline(self, **fields: Any) -> DeadlineSpec:
        return cast("DeadlineSpec", Node("DeadlineSpec", fields))
