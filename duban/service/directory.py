"""The directory (SPEC §16): units and users, the operator's commands, and the checks that
every unit a case or a filter names is one of them.

`unit add`, `unit rename` and `user add` are the operator's (whoever runs the database;
they take no --actor, SPEC §8), and each is an event of the audit chain with an empty case:
actor and role `operator`, and in its data how it came (`via`: cli, demo, python) and the
operating-system user who ran it. A rename is also an event on each case of the unit, so
the case's own history says why its unit's name changed, and replaying it gives the case
storage holds (`duban.engine.replay`).
"""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from duban.engine.model import Case, Event
from duban.errors import NotFoundError, RefusedError, UsageError
from duban.service.names import checked, normalise, same_as, suggestion
from duban.storage import audit_log
from duban.storage import repository as repo
from duban.storage import units as unit_rows

OPERATOR = "operator"  # the actor and role of the directory's audit events
ROLE_LABELS = {"office": "督查室", "unit": "承办单位", "leader": "分管领导", "inspector": "纪检监察"}


def os_user() -> str:
    """Who ran the command, as the operating system knows them ('unknown' when it cannot say)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment and no passwd entry
        return "unknown"


def directory_event(action: str, now: datetime, via: str, **data: Any) -> Event:
    return Event(action, OPERATOR, OPERATOR, now, data={**data, "via": via, "os_user": os_user()})


def _audit(conn: Connection, events: list[Event]) -> None:
    chain = audit_log.Chain(conn)
    chain.add(None, events)
    chain.flush()


# -- looking units up -------------------------------------------------------------------
def unit(conn: Connection, typed: str, what: str, *, lock: bool = False) -> str:
    """The directory's name of the unit `typed` names (canonical form, look-alikes found),
    or NotFoundError (exit 3) naming the closest units, or the new name of a renamed one."""
    name = normalise(typed)
    if name and unit_rows.exists(conn, name, lock=lock):
        return name
    known = unit_rows.names(conn)
    found = same_as(name, known) if name else None
    if found is not None and unit_rows.exists(conn, found, lock=lock):
        return found
    renamed = unit_rows.former_names(conn).get(name)
    if renamed is not None:
        raise NotFoundError(f"{what} {typed}：该单位已更名为“{renamed['unit']}”，请用新名称")
    raise NotFoundError(f"{what} {typed}：单位名录中没有这个单位；{suggestion(name, known)}"
                        f"（新增单位：duban unit add 单位名称）")


def case_units(conn: Connection, lead: str, co_units: list[str]) -> tuple[str, list[str]]:
    """A new case's lead and co-units as the directory names them (exit 3 for an unknown one)."""
    return (unit(conn, lead, "--unit", lock=True),
            [unit(conn, u, "--co-unit", lock=True) for u in co_units])


# -- the operator's commands --------------------------------------------------------------
def _new_unit_name(conn: Connection, typed: str) -> str:
    """A name a new unit (or a renamed one) may take: canonical, and no unit's already."""
    name = checked(typed, "单位")
    known = unit_rows.names(conn)
    if typed in known:
        raise RefusedError(f"单位“{name}”已在名录中")
    twin = same_as(name, known)
    if twin is not None:  # reads as a unit there: refused as a name, not as a duplicate
        raise UsageError(f"单位名称 {typed!r} 与已有单位“{twin}”无法区分（规范化后相同）")
    renamed = unit_rows.former_names(conn).get(name)
    if renamed is not None:
        raise RefusedError(f"“{name}”是单位“{renamed['unit']}”的曾用名，不能再用作另一个单位的名称")
    return name


def add_unit(conn: Connection, typed: str, now: datetime, via: str) -> dict[str, Any]:
    name = _new_unit_name(conn, typed)
    unit_rows.add(conn, name, now)
    _audit(conn, [directory_event("unit_added", now, via, unit=name)])
    return {"name": name, "added": True}


def rename_unit(conn: Connection, old_typed: str, new_typed: str, now: datetime, via: str) -> dict[str, Any]:
    old = unit(conn, old_typed, "OLD")
    new = checked(new_typed, "单位")
    if new == old:
        raise UsageError(f"新旧名称相同（“{old}”）：没有要改的")
    renamed = unit_rows.former_names(conn).get(new)
    if renamed is None or renamed["unit"] != old:  # taking back its own former name is allowed
        new = _new_unit_name(conn, new_typed)

    def on_case(case: Case) -> Event:
        return Event("unit_renamed", OPERATOR, OPERATOR, now, from_state=case.state, to_state=case.state,
                     data={"old": old, "new": new, "via": via, "os_user": os_user()})

    def on_directory(ids: list[int]) -> Event:
        return directory_event("unit_renamed", now, via, old=old, new=new, cases=ids)

    ids = unit_rows.rename(conn, old, new, now, on_directory, on_case)
    return {"old": old, "new": new, "cases": ids}


def add_user(conn: Connection, typed: str, role: str, unit_typed: str | None, now: datetime,
             via: str) -> dict[str, Any]:
    """Add a user; a unit user's unit joins the directory when it is new."""
    if role not in ROLE_LABELS:
        raise UsageError(f"--role {role}: allowed roles: "
                         + ", ".join(f"{r} ({label})" for r, label in ROLE_LABELS.items()))
    name = checked(typed, "用户")
    if role == "unit" and (unit_typed is None or not normalise(unit_typed)):
        if unit_typed is not None:
            checked(unit_typed, "单位")  # says the unit given is blank
        raise UsageError("a unit user needs --unit UNIT (the 承办单位 they act for)")
    if role != "unit" and unit_typed is not None:
        raise UsageError(f"--unit: 只有承办单位（unit）用户属于某个单位；{ROLE_LABELS[role]}（{role}）用户不带 --unit")
    if repo.get_user(conn, typed) is not None:
        raise RefusedError(f"user '{typed}' already exists")
    twin = same_as(name, [u["name"] for u in repo.list_users(conn)])
    if twin is not None:  # reads as a user there: refused as a name, not as a duplicate
        raise UsageError(f"用户名 {typed!r} 与已有用户“{twin}”无法区分（规范化后相同）")
    events: list[Event] = []
    unit_name = None
    if unit_typed is not None:
        try:
            unit_name = unit(conn, unit_typed, "--unit", lock=True)
        except NotFoundError:
            unit_name = _new_unit_name(conn, unit_typed)  # refuses a former name, says why
            unit_rows.add(conn, unit_name, now)
            events.append(directory_event("unit_added", now, via, unit=unit_name))
    repo.add_user(conn, name, role, unit_name, now)
    events.append(directory_event("user_added", now, via, user=name, role=role, unit=unit_name))
    _audit(conn, events)
    return {"name": name, "role": role, "unit": unit_name, "unit_added": len(events) == 2}
