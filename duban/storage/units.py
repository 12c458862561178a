"""The unit directory in the database (SPEC §16): units, their former names, renames.

Cases, users and notices hold a unit by its name (what every list, report and filter
reads), so a rename rewrites the name in place, in one transaction: the units row, the
users acting for it, the notices addressed to it, and the lead and co-units of every case
it is on — each case through the ordinary write path (`repository.commit_outcome`), which
bumps its version (a step racing the rename fails with exit 5 instead of writing the old
name back) and appends an audit event saying so on that case. The audit chain itself is
never rewritten: events before the rename keep the old name, and `unit_names` keeps every
former name pointing at the current one. Deliveries (SPEC §14) are a record of who was
told, under the name they had then, and are left as they are.

On PostgreSQL a step that names a unit takes a share lock on its row (`lookup(lock=True)`)
and a rename updates that row first, so a case cannot be opened for a unit under a name
being renamed away.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from duban.engine.model import Case, Event, Outcome
from duban.storage import repository as repo
from duban.storage.tables import CASE_UNITS, CASES, NOTICES, UNIT_NAMES, UNITS, USERS


def names(conn: Connection) -> list[str]:
    """Every unit's current name, sorted."""
    return [r[0] for r in conn.execute(select(UNITS.c.name).order_by(UNITS.c.name))]


def former_names(conn: Connection) -> dict[str, dict[str, Any]]:
    """Former name → {unit: its current name, renamed_at}."""
    return {r.name: {"unit": r.unit, "renamed_at": r.renamed_at} for r in conn.execute(select(UNIT_NAMES))}


def exists(conn: Connection, name: str, *, lock: bool = False) -> bool:
    """Whether `name` is a unit's current name; `lock` holds a share lock on its row until the
    transaction ends (PostgreSQL; SQLite's writers are one at a time anyway)."""
    stmt = select(UNITS.c.name).where(UNITS.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True)
    return conn.execute(stmt).first() is not None


def add(conn: Connection, name: str, now: datetime) -> None:
    conn.execute(insert(UNITS).values(name=name, created_at=now))


def listing(conn: Connection) -> list[dict[str, Any]]:
    """Every unit with its users, its cases (as lead or co-unit; open ones too) and former names."""
    users: dict[str, int] = dict(conn.execute(select(USERS.c.unit, func.count()).where(USERS.c.unit.is_not(None))
                              .group_by(USERS.c.unit)).all())
    on_cases = select(CASE_UNITS.c.unit, func.count(), func.count(CASES.c.id).filter(CASES.c.closed_at.is_(None)))
    counts = {r[0]: (r[1], r[2]) for r in conn.execute(
        on_cases.join_from(CASE_UNITS, CASES, CASES.c.id == CASE_UNITS.c.case_id).group_by(CASE_UNITS.c.unit))}
    former: dict[str, list[str]] = {}
    for r in conn.execute(select(UNIT_NAMES).order_by(UNIT_NAMES.c.renamed_at, UNIT_NAMES.c.name)):
        former.setdefault(r.unit, []).append(r.name)
    return [{"name": r.name, "created_at": r.created_at, "users": users.get(r.name, 0),
             "cases": counts.get(r.name, (0, 0))[0], "open_cases": counts.get(r.name, (0, 0))[1],
             "former_names": former.get(r.name, [])}
            for r in conn.execute(select(UNITS).order_by(UNITS.c.name))]


def rename(conn: Connection, old: str, new: str, now: datetime, directory_event: Callable[[list[int]], Event],
           case_event: Callable[[Case], Event]) -> list[int]:
    """Rename unit `old` to `new` everywhere it is held; returns the ids of its cases.

    `directory_event(ids)` goes onto the audit chain first (case_id empty), then
    `case_event(case)` for each case the unit is on, in id order."""
    conn.execute(update(UNITS).where(UNITS.c.name == old).values(name=new))  # first: the lock opens wait on
    ids = sorted({r[0] for r in conn.execute(select(CASE_UNITS.c.case_id).where(CASE_UNITS.c.unit == old))})
    batch = repo.Batch(conn)
    batch.chain.add(None, [directory_event(ids)])
    for case in repo.load_cases(conn, ids, for_update=True).values():
        case.rename_unit(old, new)
        repo.commit_outcome(conn, Outcome(case, events=[case_event(case)], units_changed=True), now, batch)
    conn.execute(update(USERS).where(USERS.c.unit == old).values(unit=new))
    conn.execute(update(NOTICES).where(NOTICES.c.recipient == old).values(recipient=new))
    conn.execute(UNIT_NAMES.delete().where(UNIT_NAMES.c.name == new))  # renamed back to a former name
    conn.execute(update(UNIT_NAMES).where(UNIT_NAMES.c.unit == old).values(unit=new))
    conn.execute(insert(UNIT_NAMES).values(name=old, unit=new, renamed_at=now))
    batch.flush()
    return ids
