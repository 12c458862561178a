"""What a signed-in person may see, and which actions to offer them (SPEC §12, §13).

Seeing: the office, leaders and inspectors see every case; a unit user sees the cases its
unit leads or co-handles, and any other case is "not found" (its existence is not
disclosed). Acting is decided by the engine when a trigger is fired; what is *offered*
here is the engine's own list of human triggers (`duban.engine.allowed`) narrowed to the
user's role, and for a co-unit (配合单位) to what the engine lets a co-unit do
(`duban.engine.timeliness.lead_only`), so a button is shown only when pressing it can work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from duban.engine.guards import MEASURES
from duban.engine.timeliness import lead_only
from duban.errors import NotFoundError
from duban.storage import repository as repo
from duban.web.errors import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable

    from duban.access.service import User
    from duban.engine.model import Case
    from duban.engine.workflow import Workflow
    from duban.service.app import App

# Always-available options (挂起, 申请延期) are offered on the case page but do not put a
# case on anyone's to-do list: every open case would be there.
OPTIONAL = frozenset({"suspend", "request_extension"})
FIELD_LABELS = {"measure": "问责方式", "until": "延期至", "unit": "改派单位", "milestone": "时间节点"}


@dataclass(frozen=True)
class Field:
    """A value an action's form asks for: a choice when the values are known, a date for
    `until`, else free text."""

    name: str
    label: str
    choices: tuple[str, ...] = ()

    @property
    def is_date(self) -> bool:
        return self.name == "until"


@dataclass(frozen=True)
class Action:
    """A trigger offered to a user, with the fields its form needs."""

    trigger: str
    label: str
    fields: tuple[Field, ...] = ()


def case_id_of(text: str) -> int:
    """A case id from the path; anything else names no case (404, never a 500)."""
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**63:
        raise ApiError(404, "not_found", f"no case {text[:40]}")
    return int(text)


def sees(user: User, case: dict[str, Any]) -> bool:
    if user.role != "unit":
        return True
    return user.unit == case["lead_unit"] or user.unit in case["co_units"]


def visible(app: App, user: User, case_id: int) -> dict[str, Any]:
    """The case as shown, or NotFoundError when it does not exist or the user may not see it."""
    case = app.show(case_id)
    if not sees(user, case):
        raise NotFoundError(f"no case {case_id}")
    return case


def with_my_triggers(app: App, user: User, case: dict[str, Any]) -> dict[str, Any]:
    """Case JSON plus the triggers this user may fire now (`my_triggers`): what the API answers."""
    return {**case, "my_triggers": [a.trigger for a in actions(app, user, case)]}


def case_document(app: App, user: User, case_id: int) -> dict[str, Any]:
    """`GET /api/v1/cases/{id}`'s answer: the case as the user may see it, with `my_triggers`."""
    return with_my_triggers(app, user, visible(app, user, case_id))


def check_visible(app: App, user: User, case_id: int) -> None:
    """`visible`'s check alone, from the case row (no timers, no view): before a change."""
    with app.db.read() as conn:
        case = repo.load_case(conn, case_id)
    if case is None or not sees_case(user)(case):
        raise NotFoundError(f"no case {case_id}")


def sees_case(user: User) -> Callable[[Case], bool]:
    """`sees` on a case as stored: `App.fire(seen=…)` checks it in the step's own transaction
    (a read transaction of its own before the write cost as much as a tenth of the fire)."""
    return lambda case: sees(user, {"lead_unit": case.lead_unit, "co_units": case.co_units})


def workflow_of(app: App, case_id: int) -> Workflow:
    """The definition the case is pinned to (as `App` holds it, cached there)."""
    with app.db.read() as conn:
        case = repo.load_case(conn, case_id)
        if case is None:
            raise NotFoundError(f"no case {case_id}")
        return app.workflow_of(conn, case)


# The actions offered, by App and by what decides them: the pinned definition (a workflow
# version never changes once pinned), the state, the user's allowed triggers and whether the
# user's unit co-handles. Every API answer about a case lists them (`my_triggers`); reading the
# case's definition back for each answer cost a read transaction per case.
_OFFERED: WeakKeyDictionary[App, dict[tuple[Any, ...], tuple[Action, ...]]] = WeakKeyDictionary()


def actions(app: App, user: User, case: dict[str, Any]) -> list[Action]:
    """The triggers this user may fire on the case now, each with its form fields."""
    mine = [t for t in case["allowed_triggers"] if user.role in t["roles"]]
    if not mine:
        return []
    co_unit = user.role == "unit" and user.unit != case["lead_unit"]
    key = (case["workflow"], case["workflow_version"], case["state"], co_unit,
           tuple((t["trigger"], t["label"]) for t in mine))
    known = _OFFERED.setdefault(app, {})
    if key not in known:
        wf = workflow_of(app, case["id"])
        known[key] = tuple(Action(t["trigger"], t["label"], _fields(wf, t["trigger"])) for t in mine
                           if not (co_unit and lead_only(wf, case["state"], t["trigger"])))
    return list(known[key])


def todo_actions(app: App, user: User, case: dict[str, Any]) -> list[Action]:
    """The actions that make the case the user's to-do (not the always-available options)."""
    if not any(user.role in t["roles"] and t["trigger"] not in OPTIONAL for t in case["allowed_triggers"]):
        return []  # no workflow load for the many cases with nothing for this role
    return [a for a in actions(app, user, case) if a.trigger not in OPTIONAL]


def _fields(wf: Workflow, trigger: str) -> tuple[Field, ...]:
    if trigger == "request_extension":
        return (Field("until", FIELD_LABELS["until"]),)
    names: list[str] = []
    for t in wf.spec.transition_for(trigger):
        names.extend(k for k in t.sets if k not in names)
    return tuple(_field(wf, name) for name in names)


def _field(wf: Workflow, name: str) -> Field:
    if name == "measure":
        return Field(name, FIELD_LABELS[name], MEASURES)
    spec = wf.spec.fields.get(name)
    label = FIELD_LABELS.get(name) or (spec.label if spec else name)
    return Field(name, label, tuple(spec.values or ()) if spec else ())


def may_open(user: User) -> bool:
    """Whether to offer 交办 (the engine refuses anyone else anyway)."""
    from duban.engine.service import OPENER_ROLES

    return user.role in OPENER_ROLES
