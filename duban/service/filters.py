"""Filters are checked (SPEC §16): a state, workflow, unit or case a list is filtered by must
exist, or the command exits 2 (state, workflow) or 3 (unit, case) saying what does — never
an empty list that reads as "nothing there".

What exists: the workflows cases were opened with (pinned in the database) and, when a
name is not among those, the workflows new cases can use (the catalog, loaded only then);
the units of the directory; for notices, the roles notices go to as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from duban.errors import NotFoundError
from duban.service import vocabulary
from duban.service.directory import ROLE_LABELS, unit
from duban.storage.tables import CASES, WORKFLOW_VERSIONS

if TYPE_CHECKING:
    from duban.workflows import Catalog


@dataclass(frozen=True)
class CaseFilter:
    """`case list`'s filters resolved: a workflow name, the (workflow, state) pairs a state
    names (None: any state), the directory's name of a unit. `empty`: a state or workflow
    that exists but no case can match (defined, never used)."""

    workflow: str | None = None
    states: frozenset[tuple[str, str]] | None = None
    unit: str | None = None
    empty: bool = False


def cases(conn: Connection, catalog: Callable[[], Catalog], *, state: str | None, unit_name: str | None,
          workflow: str | None) -> CaseFilter:
    found_unit = unit(conn, unit_name, "--unit") if unit_name is not None else None
    if state is None and workflow is None:
        return CaseFilter(unit=found_unit)
    pinned = vocabulary.known(r.body for r in conn.execute(
        select(WORKFLOW_VERSIONS.c.body).order_by(WORKFLOW_VERSIONS.c.name, WORKFLOW_VERSIONS.c.version)))
    resolved = _resolve(pinned, state, workflow)
    if resolved is not None:
        return CaseFilter(resolved[0], resolved[1], found_unit)
    everything = vocabulary.known([*(w.raw for w in catalog().all()), *(_body(w) for w in pinned)])
    resolved = _resolve(everything, state, workflow, refuse=True)
    assert resolved is not None
    return CaseFilter(resolved[0], resolved[1], found_unit, empty=True)


def _body(w: vocabulary.Known) -> dict[str, object]:
    return {"name": w.name, "label": w.label, "states": {k: {"label": v} for k, v in w.states.items()}}


def _resolve(workflows: list[vocabulary.Known], state: str | None, workflow: str | None, *, refuse: bool = False
             ) -> tuple[str | None, frozenset[tuple[str, str]] | None] | None:
    """(workflow name, state pairs) named among `workflows`; None (or, with `refuse`, a
    UsageError listing what exists) when one of them is not there."""
    name = None
    if workflow is not None:
        name = vocabulary.workflow(workflow, workflows)
        if name is None:
            if refuse:
                raise vocabulary.unknown_workflow(workflow, workflows)
            return None
    if state is None:
        return name, None
    within = [w for w in workflows if name is None or w.name == name]
    pairs = vocabulary.states(state, within)
    if not pairs:
        if refuse:
            raise vocabulary.unknown_state(state, within)
        return None
    return name, frozenset(pairs)


def notice_recipient(conn: Connection, typed: str) -> str:
    """A unit of the directory, or a role notices go to (office or 督查室 …)."""
    text = typed.strip()
    for role, label in ROLE_LABELS.items():
        if text in (role, label) and role != "unit":
            return role
    return unit(conn, typed, "--unit")


def case_exists(conn: Connection, case_id: int) -> None:
    if not -(2**63) <= case_id < 2**63 or conn.execute(select(CASES.c.id).where(CASES.c.id == case_id)).first() is None:
        raise NotFoundError(f"--case {case_id}: no case {case_id}")
