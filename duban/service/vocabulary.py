"""Triggers, states and workflows as people type them: by identifier or by Chinese label
(SPEC §16: `case fire 7 签收`, `case list --state 办理中`), resolved to identifiers, and a
name that is neither refused saying what exists. Pure: no database.

Labels are unique within a workflow (each shipped workflow's trigger and state labels
are), so a label names one trigger of the case's workflow; a state label may name states
of several workflows, and a filter matches each of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from duban.engine.allowed import human_triggers
from duban.engine.operations import LABELS as SHARED_LABELS
from duban.errors import RefusedError, UsageError

if TYPE_CHECKING:
    from duban.engine.model import Case
    from duban.engine.workflow import Workflow


class UnknownTriggerError(RefusedError):
    """A trigger the case's workflow does not have, by identifier or by label (exit 4, as a
    trigger not allowed now is)."""


def trigger(wf: Workflow, case: Case, typed: str) -> str:
    """The identifier of the trigger `typed` names on this case's workflow."""
    if typed in SHARED_LABELS or wf.spec.transition_for(typed):
        return typed
    text = typed.strip()
    for t in wf.spec.transitions:
        if text in (t.label, t.trigger):
            return t.trigger
    for op, label in SHARED_LABELS.items():
        if text == label:
            return op
    now = [f"{_label(wf, t)} {t}（{'/'.join(roles)}）" for t, roles in human_triggers(wf, case)]
    raise UnknownTriggerError(
        f"case {case.id}: 流程“{wf.spec.label}”（{wf.name}）没有操作 '{typed}'；"
        + (f"现在可以：{'、'.join(now)}" if now else "该案件现在没有可做的操作")
    )


def _label(wf: Workflow, trigger: str) -> str:
    return SHARED_LABELS.get(trigger) or wf.trigger_label(trigger)


@dataclass(frozen=True)
class Known:
    """A workflow as a filter sees it: its name, label and states (identifier → label)."""

    name: str
    label: str
    states: dict[str, str]


def known(bodies: Iterable[Mapping[str, Any]]) -> list[Known]:
    """Workflows from their definitions (stored bodies or files), one entry per name; a
    later version's labels are added to an earlier one's."""
    found: dict[str, Known] = {}
    for body in bodies:
        states = {k: str(v.get("label", k)) for k, v in body.get("states", {}).items()}
        name = str(body["name"])
        if name in found:
            states = {**found[name].states, **states}
        found[name] = Known(name, str(body.get("label", name)), states)
    return list(found.values())


def workflow(typed: str, workflows: list[Known]) -> str | None:
    """The name of the workflow `typed` names (its name or its label), if any."""
    text = typed.strip()
    return next((w.name for w in workflows if text in (w.name, w.label)), None)


def states(typed: str, workflows: list[Known]) -> set[tuple[str, str]]:
    """Every (workflow, state) whose identifier or label is `typed`."""
    text = typed.strip()
    return {(w.name, s) for w in workflows for s, label in w.states.items() if text in (s, label)}


def unknown_workflow(typed: str, workflows: list[Known]) -> UsageError:
    listed = "、".join(f"{w.name} {w.label}" for w in sorted(workflows, key=lambda w: w.name))
    return UsageError(f"--workflow {typed}：没有这个流程；已有：{listed or '（无）'}")


def unknown_state(typed: str, workflows: list[Known]) -> UsageError:
    pairs = dict.fromkeys((s, label) for w in workflows for s, label in w.states.items())
    where = f"流程 {workflows[0].name} " if len(workflows) == 1 else ""
    listed = "、".join(f"{label} {s}" for s, label in pairs)
    return UsageError(f"--state {typed}：{where}没有这个状态；可选：{listed or '（无）'}")
