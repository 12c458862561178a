"""Test doubles: the manual clock and an in-memory unit of work (`duban.engine.ports`).

`FakeUnitOfWork` stores cases, timers, audit events, users, units and pinned workflows in
a `FakeStore` (plain dicts and lists), with the rules the database enforces that a use
case can notice: a case is written only if it is still at the version it was read at
(else `ConcurrencyError`), a unit or user must be in the directory, and nothing a unit of
work wrote is kept unless its ``with`` block ends normally. The case use cases
(`duban.service.cases`) run on it in milliseconds, with no database::

    store = FakeStore(users={"wang": ("office", None)}, units={"区发改局"})
    with FakeUnitOfWork(store) as uow:
        case, _ = service.open_case(uow, wf, ...)

Cases are copied in and out, as a database would, so a use case never shares an object
with the store.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

from duban.clock import ManualClock
from duban.engine.audit import GENESIS, event_hash
from duban.engine.calendar import WorkingCalendar
from duban.engine.model import Case, Outcome
from duban.engine.ports import CatalogLoader, Record
from duban.errors import ConcurrencyError, NotFoundError

__all__ = ["FakeStore", "FakeUnitOfWork", "ManualClock"]


@dataclass
class FakeStore:
    """What a fake database holds; `users` maps a name to (role, unit)."""

    users: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    units: set[str] = field(default_factory=set)
    calendar: WorkingCalendar = field(default_factory=lambda: WorkingCalendar(frozenset(), frozenset(), frozenset()))
    cases: dict[int, Case] = field(default_factory=dict)
    timers: list[Record] = field(default_factory=list)
    events: list[Record] = field(default_factory=list)
    notices: list[Record] = field(default_factory=list)
    pinned: dict[tuple[str, int], Record] = field(default_factory=dict)
    watches: set[tuple[int, str]] = field(default_factory=set)
    disabled: set[str] = field(default_factory=set)
    writes: list[tuple[int, int]] = field(default_factory=list)  # (case id, version written), in order


class FakeCases:
    """`ports.CaseRepository` over a `FakeStore`."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def get(self, case_id: int, *, for_update: bool = False) -> Case | None:
        found = self.store.cases.get(case_id)
        return copy.deepcopy(found) if found is not None else None

    def get_many(self, case_ids: Sequence[int], *, for_update: bool = False) -> dict[int, Case]:
        return {i: copy.deepcopy(self.store.cases[i]) for i in sorted(set(case_ids)) if i in self.store.cases}

    def find(self, catalog: CatalogLoader, *, state: str | None, unit: str | None,
             workflow: str | None, overdue: bool | None) -> list[Case]:
        if unit is not None and unit not in self.store.units:
            raise NotFoundError(f"--unit {unit}：单位名录中没有这个单位")
        return [copy.deepcopy(c) for _, c in sorted(self.store.cases.items())
                if (state is None or c.state == state) and (workflow is None or c.workflow == workflow)
                and (unit is None or unit in c.units()) and (overdue is None or c.overdue == overdue)]

    def commit(self, out: Outcome, now: datetime) -> Case:
        """As `repository.commit_outcome`: insert or version-checked update, timers, events, notices."""
        store, case = self.store, out.case
        if case.id is None:
            case.id = max(store.cases, default=0) + 1
            store.cases[case.id] = copy.deepcopy(case)
            store.writes.append((case.id, case.version))
        elif (out.events and out.watch is None) or out.arm or out.cancel or out.units_changed:
            if store.cases[case.id].version != case.version:
                raise ConcurrencyError(f"case {case.id} changed underneath (another action won); read it again and retry")
            case.version += 1
            store.cases[case.id] = copy.deepcopy(case)
            store.writes.append((case.id, case.version))
        if out.watch is not None:
            key = (case.id, out.events[0].actor)
            (store.watches.add if out.watch else store.watches.discard)(key)
        for t in store.timers:
            if t["case_id"] == case.id and t["deadline"] in out.cancel and t["status"] in ("pending", "claimed"):
                t.update(status="cancelled", claimed_by=None, lease_until=None)
        for spec in out.arm:
            store.timers.append({"id": len(store.timers) + 1, "case_id": case.id, "deadline": spec.deadline,
                                 "rung": spec.rung, "due_at": spec.due_at, "approximate": spec.approximate,
                                 "status": "pending", "claimed_by": None, "lease_until": None, "fired_at": None})
        for e in out.events:
            prev = store.events[-1]["hash"] if store.events else GENESIS
            record = {"seq": len(store.events) + 1, "case_id": case.id, "at": e.at, "actor": e.actor, "role": e.role,
                      "action": e.action, "trigger": e.trigger, "from_state": e.from_state, "to_state": e.to_state,
                      "note": e.note, "data": e.data, "prev_hash": prev}
            record["hash"] = event_hash(record)
            store.events.append(record)
        store.notices.extend({"id": len(store.notices) + 1, "case_id": case.id, "created_at": n.at, "kind": n.kind,
                              "recipient": n.recipient, "level": n.level, "title": n.title} for n in out.notices)
        return case

    def timers(self, case_ids: Sequence[int]) -> dict[int, list[Record]]:
        found: dict[int, list[Record]] = {i: [] for i in case_ids}
        for t in sorted(self.store.timers, key=lambda t: (t["due_at"], t["id"])):
            if t["case_id"] in found:
                found[t["case_id"]].append(dict(t))
        return found


class FakeDirectory:
    """`ports.Directory` over a `FakeStore`."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def user(self, name: str) -> Record | None:
        if name not in self.store.users:
            return None
        role, unit = self.store.users[name]
        return {"name": name, "role": role, "unit": unit, "disabled_at": "disabled" if name in self.store.disabled else None}

    def unit(self, typed: str, what: str, *, lock: bool = False) -> str:
        name = typed.strip()
        if name not in self.store.units:
            raise NotFoundError(f"{what} {typed}：单位名录中没有这个单位")
        return name

    def case_units(self, lead: str, co_units: list[str]) -> tuple[str, list[str]]:
        return self.unit(lead, "--unit"), [self.unit(u, "--co-unit") for u in co_units]

    def watching(self, case_id: int, user: str) -> bool:
        return (case_id, user) in self.store.watches


class FakeWorkflowVersions:
    """`ports.WorkflowVersions` over a `FakeStore`."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def pinned(self, name: str, version: int) -> Record | None:
        return self.store.pinned.get((name, version))

    def pin(self, name: str, version: int, fingerprint: str, source: str, body: dict[str, Any],
            now: datetime) -> None:
        self.store.pinned[(name, version)] = {"name": name, "version": version, "fingerprint": fingerprint,
                                              "source": source, "body": copy.deepcopy(body), "pinned_at": now}


class FakeAuditTrail:
    """`ports.AuditTrail` over a `FakeStore`."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def events(self, case_id: int) -> Iterable[Record]:
        return [dict(e) for e in self.store.events if e["case_id"] == case_id]

    def decisions(self, case_ids: Sequence[int], trigger: str) -> dict[int, list[Record]]:
        found: dict[int, list[Record]] = {i: [] for i in case_ids}
        for e in self.store.events:
            if e["case_id"] in found and e["trigger"] == trigger:
                found[e["case_id"]].append(dict(e))
        return found


class FakeUnitOfWork:
    """`ports.UnitOfWork` in memory: one "transaction" on a `FakeStore`, kept only if the
    ``with`` block ends normally (a refused step leaves the store as it was)."""

    def __init__(self, store: FakeStore | None = None) -> None:
        self.store = store if store is not None else FakeStore()
        self.cases = FakeCases(self.store)
        self.directory = FakeDirectory(self.store)
        self.workflows = FakeWorkflowVersions(self.store)
        self.audit = FakeAuditTrail(self.store)
        self._before: dict[str, Any] | None = None

    def calendar(self, rest_day_start: str) -> WorkingCalendar:
        return self.store.calendar

    def __enter__(self) -> FakeUnitOfWork:
        self._before = copy.deepcopy(vars(self.store))
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None and self._before is not None:
            vars(self.store).update(self._before)  # rolled back
        self._before = None
