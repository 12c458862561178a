"""Workflow definitions: the data a workflow file holds, and its validation.

A definition file is YAML read with ``yaml.safe_load`` (by `duban.workflows`); this module
checks the resulting dict. Shape problems (unknown keys, wrong types) are found by
pydantic, meaning problems (unknown states, unreachable states, guards outside the
allow-list, timers that fire nothing, rules that do not parse) by `_check_meaning`.
Either way the result is one `DefinitionError` naming the file, the path inside it and
the reason.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import UTC as _UTC
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from duban.engine.actors import HUMAN_ROLES as HUMAN_ROLES
from duban.engine.audit import ORIGIN_KEYS
from duban.engine.deadlines import FROM_CASE as FROM_CASE
from duban.engine.deadlines import field_value, matches, parse_offset, parse_rule
from duban.engine.guards import GUARDS
from duban.engine.quoting import clip, clip_text
from duban.errors import DefinitionError, FieldRef, Part, UsageError

Role = Literal["office", "unit", "leader", "inspector", "system"]
Recipient = Literal["lead_unit", "co_units", "office", "leader", "inspector"]

_IDENT = r"^[a-z][a-z0-9_]*$"
Ident = Annotated[str, Field(pattern=_IDENT)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StateSpec(_Strict):
    label: str
    final: bool = False
    description: str = ""


class NoticeSpec(_Strict):
    kind: str = Field(min_length=1)
    to: list[Recipient] = Field(min_length=1)


class RungSpec(_Strict):
    """One rung of an escalation ladder: when it fires, relative to the deadline."""

    at: str
    label: str
    level: int | None = Field(default=None, ge=1, le=5)
    trigger: Ident | None = None
    notice: NoticeSpec | None = None


class VariantSpec(_Strict):
    """Another rule for the deadline when the case's fields match (e.g. urgent → 24h)."""

    when: dict[str, list[str]] = Field(min_length=1)
    rule: str


class DeadlineSpec(_Strict):
    label: str
    rule: str
    anchor: Literal["opened", "entered"] = "entered"
    running_in: list[Ident] = Field(min_length=1)
    ladder: Ident | list[RungSpec]
    restart_on_reentry: bool = False
    when: dict[str, list[str]] = Field(default_factory=dict)  # runs only for cases whose fields match
    variants: list[VariantSpec] = Field(default_factory=list)
    ends_on: list[Ident] = Field(default_factory=list)  # triggers that meet it without leaving its states
    # a deadline for closing the case besides the main one (重办, a press conference): the
    # case's due_at (办结时限) is the running one of these nearest to falling due
    completion: bool = False
    source: str = ""  # the rule's legal or local source, shown by `workflow show`


class TransitionSpec(_Strict):
    trigger: Ident
    label: str
    source: Ident | list[Ident]
    dest: Ident
    roles: list[Role] = Field(min_length=1)
    guards: list[str] = Field(default_factory=list)
    sets: list[Ident] = Field(default_factory=list)
    record: dict[str, str] = Field(default_factory=dict)  # fields the transition sets itself
    reassigns: bool = False  # --set unit=… makes that unit the lead (改派)
    escalate_to: int | None = Field(default=None, ge=1, le=5)

    @property
    def sources(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)


class DutySpec(_Strict):
    """Deadlines the office sets per case when opening it: milestones (时间节点,
    ``--milestone DATE=TITLE``) or recurring progress reports (``--report monthly:5``)."""

    label: str
    running_in: list[Ident] = Field(min_length=1)
    met_by: Ident
    ladder: Ident | list[RungSpec]


class FieldSpec(_Strict):
    label: str
    values: list[str] | None = None
    default: str | None = None
    settable: bool = True  # False: only transitions set it (`record`), never --set at opening


class WorkflowSpec(_Strict):
    name: Ident
    version: int = Field(ge=1)
    label: str
    description: str = ""
    initial: Ident
    main_deadline: Ident | None = None
    states: dict[str, StateSpec] = Field(min_length=1)
    transitions: list[TransitionSpec] = Field(min_length=1)
    deadlines: dict[str, DeadlineSpec] = Field(default_factory=dict)
    ladders: dict[str, list[RungSpec]] = Field(default_factory=dict)
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    overrides: dict[str, Any] | None = None  # set when an office's settings file derived this version
    milestones: DutySpec | None = None
    reports: DutySpec | None = None

    @field_validator("states", "deadlines", "ladders", "fields")
    @classmethod
    def _identifier_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not re.match(_IDENT, key):
                raise ValueError(f"'{key}' is not a snake_case identifier")
        return value

    def rungs(self, deadline: str) -> list[RungSpec]:
        """The ladder of a deadline, resolving a named ladder."""
        return self.ladder(self.deadlines[deadline].ladder)

    def ladder(self, ladder: str | list[RungSpec]) -> list[RungSpec]:
        return self.ladders[ladder] if isinstance(ladder, str) else ladder

    def transition_for(self, trigger: str) -> list[TransitionSpec]:
        return [t for t in self.transitions if t.trigger == trigger]

    def field_value(self, data: dict[str, Any], key: str) -> str:
        """A case's value of a field, or the field's default."""
        return field_value(self.fields, data, key)

    def matches(self, data: dict[str, Any], when: dict[str, list[str]]) -> bool:
        return matches(self.fields, data, when)


def load_spec(raw: Any, file: str) -> WorkflowSpec:
    """Validate a parsed workflow file and return its spec, or raise DefinitionError."""
    if not isinstance(raw, dict):
        raise DefinitionError(file, "", f"expected a mapping at the top level, got {type(raw).__name__}")
    try:
        spec = WorkflowSpec.model_validate(raw)
    except ValidationError as exc:
        # in a union (ladder: name | list of rungs) the deepest error is the one that explains
        first = max(exc.errors(), key=lambda e: len(e["loc"]))
        path = _path(first["loc"])
        if first["type"] == "extra_forbidden":
            allowed = _allowed_keys(first["loc"])
            reason = f"unknown key {clip(first['loc'][-1])} (allowed: {allowed})"
            path = _path(first["loc"][:-1]) or "(top level)"
        else:
            # clipped: the input may be a huge value (SPEC §16 "Bad input is bounded")
            reason = f"{clip_text(first['msg'])} (got {clip(first.get('input'))})"
        raise DefinitionError(file, path, reason) from None
    _check_meaning(spec, file)
    return spec


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        # pydantic adds the union member it tried ('str', 'list[RungSpec]', 'constrained-str'):
        # noise to a reader of the file
        if isinstance(part, str) and re.match(r"^(constrained-|function-|\w+\[|str$|int$|bool$)", part):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_MODEL_BY_KEY: dict[str, type[BaseModel]] = {
    "states": StateSpec,
    "transitions": TransitionSpec,
    "deadlines": DeadlineSpec,
    "ladders": RungSpec,
    "fields": FieldSpec,
    "ladder": RungSpec,
    "variants": VariantSpec,
    "milestones": DutySpec,
    "reports": DutySpec,
    "notice": NoticeSpec,
}


def _allowed_keys(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = WorkflowSpec
    for part in loc[:-1]:
        if isinstance(part, str) and part in _MODEL_BY_KEY:
            model = _MODEL_BY_KEY[part]
    return ", ".join(model.model_fields)


def _check_meaning(spec: WorkflowSpec, file: str) -> None:
    def fail(path: str, *reason: Part) -> None:
        raise DefinitionError(file, path, *reason)

    states = set(spec.states)
    known = ", ".join(sorted(states))
    if spec.initial not in states:
        fail("initial", f"unknown state '{spec.initial}' (states: {known})")
    if spec.states[spec.initial].final:
        fail("initial", "the initial state cannot be final")
    triggers = {t.trigger for t in spec.transitions}
    for key in spec.fields:
        if key in ORIGIN_KEYS:  # a fired trigger's values are its event's data, next to these
            fail(f"fields.{key}", f"'{key}' is reserved: every audit event's data records how it came in it")
    for i, t in enumerate(spec.transitions):
        for src in t.sources:
            if src not in states:
                fail(f"transitions[{i}].source", f"unknown state '{src}' (states: {known})")
            if spec.states[src].final:
                fail(f"transitions[{i}].source", f"'{src}' is final: nothing leaves a final state")
        if t.dest not in states:
            fail(f"transitions[{i}].dest", f"unknown state '{t.dest}' (states: {known})")
        for g, guard in enumerate(t.guards):
            if guard not in GUARDS:
                fail(f"transitions[{i}].guards[{g}]", f"'{guard}' is not an allowed guard (allowed: {', '.join(sorted(GUARDS))})")
        if "system" in t.roles and len(t.roles) > 1:
            fail(f"transitions[{i}].roles", "a 'system' trigger is fired by timers only; people cannot share it")
        for key in t.sets:
            if key in ORIGIN_KEYS:
                fail(f"transitions[{i}].sets", f"'{key}' is reserved: every audit event's data records how it came in it")
            if key in spec.fields:
                fail(f"transitions[{i}].sets", f"'{key}' is a field set at opening, not by a trigger")
        for key in t.record:
            if key not in spec.fields:
                fail(f"transitions[{i}].record", f"unknown field '{key}' (fields: {', '.join(spec.fields) or 'none'})")
        if t.reassigns and "unit" not in t.sets:
            fail(f"transitions[{i}].reassigns", "a reassigning trigger needs 'unit' in its sets")
    _check_reachable(spec, fail)
    for name in spec.ladders:
        _check_rungs(spec, spec.ladders[name], f"ladders.{name}", triggers, fail)
    for name, d in spec.deadlines.items():
        for j, st in enumerate(d.running_in):
            if st not in states:
                fail(f"deadlines.{name}.running_in[{j}]", f"unknown state '{st}' (states: {known})")
            if spec.states[st].final:
                fail(f"deadlines.{name}.running_in[{j}]", f"'{st}' is final: a deadline cannot run in a closed case")
        rules = [(f"deadlines.{name}.rule", d.rule)] + [
            (f"deadlines.{name}.variants[{k}].rule", v.rule) for k, v in enumerate(d.variants)
        ]
        for where, rule in rules:
            _check_rule(where, rule, fail)
        conditions = [(f"deadlines.{name}.when", d.when)] + [
            (f"deadlines.{name}.variants[{k}].when", v.when) for k, v in enumerate(d.variants)
        ]
        for where, when in conditions:
            _check_when(spec, where, when, fail)
        for k, trig in enumerate(d.ends_on):
            if trig not in triggers:
                fail(f"deadlines.{name}.ends_on[{k}]", f"unknown trigger '{trig}' (triggers: {', '.join(sorted(triggers))})")
        if isinstance(d.ladder, str):
            if d.ladder not in spec.ladders:
                fail(f"deadlines.{name}.ladder", f"unknown ladder '{d.ladder}' (ladders: {', '.join(spec.ladders) or 'none'})")
        else:
            _check_rungs(spec, d.ladder, f"deadlines.{name}.ladder", triggers, fail)
    for key, duty in (("milestones", spec.milestones), ("reports", spec.reports)):
        if duty is None:
            continue
        for j, st in enumerate(duty.running_in):
            if st not in states or spec.states[st].final:
                fail(f"{key}.running_in[{j}]", f"'{st}' is not a state a case can be open in (states: {known})")
        if duty.met_by not in triggers:
            fail(f"{key}.met_by", f"unknown trigger '{duty.met_by}' (triggers: {', '.join(sorted(triggers))})")
        if isinstance(duty.ladder, str) and duty.ladder not in spec.ladders:
            fail(f"{key}.ladder", f"unknown ladder '{duty.ladder}' (ladders: {', '.join(spec.ladders) or 'none'})")
        if not isinstance(duty.ladder, str):
            _check_rungs(spec, duty.ladder, f"{key}.ladder", triggers, fail)
        if key == "reports" and not any(parse_offset(r.at).amount == 0 for r in spec.ladder(duty.ladder)):
            fail(f"{key}.ladder", "a report ladder needs a rung at \"0\": the end of each period")
    if spec.main_deadline is not None and spec.main_deadline not in spec.deadlines:
        fail("main_deadline", f"unknown deadline '{spec.main_deadline}' (deadlines: {', '.join(spec.deadlines) or 'none'})")


def _check_rule(where: str, rule: str, fail: Any) -> None:
    if rule == FROM_CASE:
        return
    try:
        parsed = parse_rule(rule, _UTC)
    except UsageError as exc:
        fail(where, *exc.parts)
    if parsed.unit in ("date", "datetime"):
        fail(where, "a fixed date belongs on the case (", FieldRef("due"), "), use rule: from_case")


def _check_when(spec: WorkflowSpec, where: str, when: dict[str, list[str]], fail: Any) -> None:
    for key, values in when.items():
        field = spec.fields.get(key)
        if field is None:
            fail(f"{where}.{key}", f"unknown field '{key}' (fields: {', '.join(spec.fields) or 'none'})")
        elif field.values is not None:
            for v in values:
                if v not in field.values:
                    fail(f"{where}.{key}", f"'{v}' is not a value of field '{key}' (values: {', '.join(field.values)})")


def _check_rungs(spec: WorkflowSpec, rungs: list[RungSpec], path: str, triggers: set[str], fail: Any) -> None:
    if not rungs:
        fail(path, "a ladder needs at least one rung")
    for k, rung in enumerate(rungs):
        where = f"{path}[{k}]"
        try:
            parse_offset(rung.at)
        except UsageError as exc:
            fail(f"{where}.at", str(exc))
        if rung.level is None and rung.trigger is None and rung.notice is None:
            fail(where, "this timer fires nothing: give it a level, a trigger or a notice")
        if rung.trigger is not None:
            if rung.trigger not in triggers:
                fail(f"{where}.trigger", f"unknown trigger '{rung.trigger}' (triggers: {', '.join(sorted(triggers))})")
            if not any("system" in t.roles for t in spec.transition_for(rung.trigger)):
                fail(f"{where}.trigger", f"'{rung.trigger}' has no 'system' role, so a timer cannot fire it")


def _check_reachable(spec: WorkflowSpec, fail: Any) -> None:
    edges: dict[str, set[str]] = {s: set() for s in spec.states}
    for t in spec.transitions:
        for src in t.sources:
            edges[src].add(t.dest)
    seen, queue = {spec.initial}, deque([spec.initial])
    while queue:
        for nxt in edges[queue.popleft()] - seen:
            seen.add(nxt)
            queue.append(nxt)
    for state in spec.states:
        if state not in seen:
            fail(f"states.{state}", f"unreachable: no transition leads to it from '{spec.initial}'")

