"""What people may fire on a case now, and which roles may: the workflow's own triggers from
the case's state, then the operations every workflow shares (extension, suspension).

Pure and light to import (no pydantic, no transitions), so `case show` lists a case's next
actions without loading the engine's service module. `Engine.human_triggers` decides the
same (tests/integration/test_case_views.py compares them on every state of every shipped
workflow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from duban.engine.operations import shared_available

if TYPE_CHECKING:
    from duban.engine.model import Case
    from duban.engine.workflow import Workflow


def human_triggers(wf: Workflow, case: Case) -> list[tuple[str, tuple[str, ...]]]:
    """The triggers people may fire now with their roles: none on a closed case, none of the
    workflow's own while it is suspended, and never one only the scheduler (`system`) fires."""
    if case.closed_at is not None:
        return []
    own = [] if case.suspended else _own(wf, case.state)
    return own + shared_available(wf, case)


def _own(wf: Workflow, state: str) -> list[tuple[str, tuple[str, ...]]]:
    """The workflow's own triggers people fire from `state`, with their roles: a function of
    the definition alone, worked out once per state (every case shown asks)."""
    key = ("human_triggers", state)
    found = wf.memo.get(key)
    if found is None:
        found = wf.memo[key] = tuple((trigger, roles) for trigger in wf.allowed_triggers(state)
                                     if (roles := tuple(sorted(_roles(wf, state, trigger)))) != ("system",))
    return list(found)


def may_fire(wf: Workflow, case: Case, trigger: str) -> bool:
    """Whether `trigger` is one of the workflow's own triggers `human_triggers` lists for the
    case now (the same rules, without listing every other one)."""
    if case.closed_at is not None or case.suspended or trigger not in wf.allowed_triggers(case.state):
        return False
    return _roles(wf, case.state, trigger) != {"system"}


def _roles(wf: Workflow, state: str, trigger: str) -> set[str]:
    return {r for t in wf.transitions_from(state, trigger) for r in t.roles}
