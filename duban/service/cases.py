"""The case use cases: open a case, fire a trigger, show, history, list (SPEC §8).

Each runs inside one unit of work (`duban.engine.ports.UnitOfWork`) with the instant its
caller read once from the clock: it reads what the step needs, runs the engine's pure
decision and commits the Outcome through the unit of work, so a refused or failed command
changes nothing. They are written against the ports alone, so they run on the database
(`duban.storage.uow`) and on `duban.testing.FakeUnitOfWork` alike; `App` opens the
transaction and logs.

Only what reading a case needs is imported at the top (README "Performance"): the engine's
service (pydantic) and the views load when a step first needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from duban.engine.allowed import human_triggers
from duban.engine.model import Case
from duban.engine.pinned import PinnedWorkflow
from duban.engine.ports import CasePages, CaseQuery, CatalogLoader, Directory, UnitOfWork, WorkflowVersions
from duban.engine.workflow import Workflow
from duban.errors import (
    ConcurrencyError,
    DefinitionError,
    NotFoundError,
    PermissionDeniedError,
    UsageError,
)

if TYPE_CHECKING:
    from duban.engine.service import Actor, Engine


@dataclass(frozen=True)
class Transitioned:
    """A committed step on a case: who fired what, where the case went, its version now."""

    case_id: int
    trigger: str
    actor: str
    from_state: str
    state: str
    version: int


class CaseService:
    """The case use cases of one office: its zone, its catalog, how its engine is built, and
    the workflow definitions read so far (pinned versions never change, so they are kept)."""

    def __init__(self, tz: tzinfo, catalog: CatalogLoader, engine: Callable[[UnitOfWork], Engine]) -> None:
        self.tz = tz
        self.catalog = catalog
        self.engine = engine
        self.pinned: dict[tuple[str, int], Workflow] = {}
        self.shown: dict[tuple[str, int], Workflow] = {}
        # a trigger's label, by workflow version: a pinned definition never changes, and the
        # lookup scans its transitions (each fire's view and each case shown asks for several)
        self.labels: dict[tuple[str, int, str], str] = {}

    # -- definitions and people ----------------------------------------------------------
    def workflow_of(self, versions: WorkflowVersions, case: Case) -> Workflow:
        """The definition a case is pinned to (from storage, never from a changed file)."""
        key = (case.workflow, case.workflow_version)
        if key not in self.pinned:
            row = _pinned_row(versions, case.workflow, case.workflow_version, case.id)
            self.pinned[key] = PinnedWorkflow.read(row["body"], row["source"])  # validated when pinned: no pydantic
        return self.pinned[key]

    def shown_workflow(self, versions: WorkflowVersions, case: Case) -> Workflow:
        """The definition to show a case with: the validated one if it was loaded here, else
        the stored body read as it is (`PinnedWorkflow`: validated when it was pinned)."""
        return self._stored(versions, case.workflow, case.workflow_version, case.id)

    def _stored(self, versions: WorkflowVersions, name: str, version: int, case_id: int | None = None) -> Workflow:
        """The definition of (name, version) read so far, else the stored body read as it is."""
        found = self.pinned.get((name, version)) or self.shown.get((name, version))
        if found is None:
            row = _pinned_row(versions, name, version, case_id)
            found = self.shown[(name, version)] = PinnedWorkflow.read(row["body"], row["source"])
        return found

    def pin(self, versions: WorkflowVersions, wf: Workflow, now: datetime) -> Workflow:
        """Store the definition a new case uses (once per version) and return it. A changed
        shipped file under an old number is refused; a changed office override gets the next
        number (v1001 → v1002), so cases opened before keep theirs."""
        while (row := versions.pinned(wf.name, wf.version)) is not None:
            if row["fingerprint"] == wf.fingerprint:
                break
            if wf.spec.overrides is None:
                raise DefinitionError(
                    wf.source, "version",
                    f"{wf.name} v{wf.version} differs from the v{wf.version} cases were opened with; "
                    f"give the changed file a new version number",
                )
            wf = wf.renumbered(wf.version + 1)
        else:
            versions.pin(wf.name, wf.version, wf.fingerprint, wf.source, wf.raw, now)
        self.pinned.setdefault((wf.name, wf.version), wf)
        return wf

    @staticmethod
    def actor(directory: Directory, name: str | None) -> Actor:
        """The person acting, from the directory: refused when missing, disabled, or 'system'."""
        from duban.engine.service import Actor
        from duban.service.names import normalise

        name = normalise(name or "")  # `--actor 'fgj '` is fgj; `' system'` is system
        if not name:
            raise UsageError("this command changes a case: give --actor NAME (or set DUBAN_ACTOR)")
        if name == "system":
            raise PermissionDeniedError("no person may act as 'system': only the scheduler fires system triggers")
        user = directory.user(name)
        if user is None:
            raise NotFoundError(f"actor '{name}' is not in the directory (add with: duban user add {name} --role …)")
        if user["disabled_at"] is not None:  # SPEC §12: a disabled user cannot act, on any path
            raise PermissionDeniedError(f"用户“{user['name']}”已停用，不能操作（恢复：duban user enable {user['name']}）")
        return Actor(user["name"], user["role"], user["unit"])

    @staticmethod
    def case(uow: UnitOfWork, case_id: int) -> Case:
        case = uow.cases.get(case_id)
        if case is None:
            raise NotFoundError(f"no case {case_id}")
        return case

    # -- changing cases --------------------------------------------------------------------
    def open_case(self, uow: UnitOfWork, wf: Workflow, *, title: str, lead_unit: str, co_units: list[str],
                  due: str | None, values: dict[str, str], actor: str | None, now: datetime,
                  milestones: list[tuple[str, str]] | None = None, report: str | None = None) -> tuple[Case, Actor]:
        """Open a case of `wf` (pinned first); the case as committed and who opened it."""
        who = self.actor(uow.directory, actor)
        lead_unit, co_units = uow.directory.case_units(lead_unit, co_units)  # exit 3 for a unit not in the directory
        wf = self.pin(uow.workflows, wf, now)
        out = self.engine(uow).open_case(
            wf, title=title, lead_unit=lead_unit, co_units=co_units, due=due, values=values, actor=who, now=now,
            milestones=milestones or [], report=report,
        )
        return uow.cases.commit(out, now), who

    def step(self, uow: UnitOfWork, case_id: int, trigger: str, actor: str | None, note: str,
             values: dict[str, str] | None, expected_version: int | None, now: datetime,
             seen: Callable[[Case], bool] | None = None) -> tuple[Case, Transitioned]:
        """Fire `trigger` on a case as `actor`; the case as committed and where it went. With
        `seen` (the API's visibility rule), a case it refuses is "no case", before any other
        check: the caller's view of the case is decided in the step's own transaction."""
        if seen is not None:
            case = self.case(uow, case_id)
            if not seen(case):
                raise NotFoundError(f"no case {case_id}")
            who = self.actor(uow.directory, actor)
        else:
            who = self.actor(uow.directory, actor)
            case = self.case(uow, case_id)
        if expected_version is not None and expected_version != case.version:
            raise ConcurrencyError(
                f"case {case_id} is at version {case.version}, not {expected_version}: "
                "it changed since you read it; read it again and retry"
            )
        wf = self.workflow_of(uow.workflows, case)
        from duban.service.vocabulary import trigger as named_trigger

        trigger = named_trigger(wf, case, trigger)  # `签收` is accept; a name that is neither: exit 4
        if trigger in ("watch", "unwatch") and who.role == "office" \
                and uow.directory.watching(case_id, who.name) == (trigger == "watch"):
            from duban.errors import RefusedError

            raise RefusedError(f"case {case_id}: 你{'已关注' if trigger == 'watch' else '没有关注'}此事项"
                               f"（{'取消关注：unwatch' if trigger == 'watch' else '关注：watch'}）")
        if values and values.get("unit", "").strip() and any(t.reassigns for t in wf.spec.transition_for(trigger)):
            values = {**values, "unit": uow.directory.unit(values["unit"], "--set unit=", lock=True)}
        from_state = case.state
        out = self.engine(uow).fire(wf, case, trigger, actor=who, note=note, values=values, now=now)
        uow.cases.commit(out, now)
        return case, Transitioned(case_id, trigger, who.name, from_state, case.state, case.version)

    # -- reading them ----------------------------------------------------------------------
    def views(self, uow: UnitOfWork, cases: list[Case]) -> list[dict[str, Any]]:
        """Cases as shown: timers and accountability decisions read for all of them at once."""
        from duban.present.views import accountability_json, case_json

        ids = [c.id for c in cases if c.id is not None]
        timers = uow.cases.timers(ids)
        decided = uow.audit.decisions(ids, "hold_accountable")
        shown = []
        for case in cases:
            assert case.id is not None
            wf = self.shown_workflow(uow.workflows, case)
            allowed = [{"trigger": t, "label": self.label(wf, case, t), "roles": list(roles)}
                       for t, roles in human_triggers(wf, case)]
            view = case_json(case, wf, timers[case.id], self.tz, allowed)
            view["accountability"] = [accountability_json(e, self.tz) for e in decided[case.id]]
            shown.append(view)
        return shown

    def step_view(self, uow: UnitOfWork, case: Case, step: Transitioned) -> dict[str, Any]:
        """What `case fire --json` prints: the case as shown after the step, and the step."""
        from duban.present.views import step_json

        shown = self.views(uow, [case])[0]
        wf = self.workflow_of(uow.workflows, case)
        shown["step"] = step_json(step, wf, self.label(wf, case, step.trigger))  # what `签收` resolved to
        return shown

    def label(self, wf: Workflow, case: Case, trigger: str) -> str:
        """`trigger`'s label in the definition `wf` the case is pinned to (looked up once)."""
        key = (case.workflow, case.workflow_version, trigger)
        found = self.labels.get(key)
        if found is None:
            from duban.present.views import trigger_label

            found = self.labels[key] = trigger_label(wf, trigger)
        return found

    def show(self, uow: UnitOfWork, case_id: int) -> dict[str, Any]:
        return self.views(uow, [self.case(uow, case_id)])[0]

    def history(self, uow: UnitOfWork, case_id: int) -> list[dict[str, Any]]:
        from duban.present.views import event_json

        wf = self.shown_workflow(uow.workflows, self.case(uow, case_id))
        return [event_json(e, self.tz, wf) for e in uow.audit.events(case_id)]

    def listing(self, uow: UnitOfWork, *, state: str | None, unit: str | None, workflow: str | None,
                overdue: bool | None) -> list[dict[str, Any]]:
        """Cases by state (identifier or label), unit and workflow, each filter checked."""
        cases = uow.cases.find(self.catalog, state=state, unit=unit, workflow=workflow, overdue=overdue)
        return self.views(uow, cases) if cases else []

    def page(self, uow: UnitOfWork, pages: CasePages, q: CaseQuery, *, count: bool = False
             ) -> tuple[list[dict[str, Any]], int | None]:
        """The cases of one page as shown (views built for its rows only), and with `count`
        how many match in all."""
        cases, total = pages.page(self.catalog, q, count=count)
        return (self.views(uow, cases) if cases else []), total

    def todo_states(self, uow: UnitOfWork, pages: CasePages, role: str, optional: frozenset[str]
                    ) -> tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]]:
        """The (workflow, state) pairs where `role` has a step of a workflow's own to take (a
        trigger not in `optional`), in every pinned definition: where a to-do can be. Two
        sets: where any unit on the case has one, and where only its lead unit has (a unit
        user's co-handled cases are not to-dos there: `timeliness.lead_only`)."""
        from duban.engine.timeliness import lead_only

        anyone: set[tuple[str, str]] = set()
        lead: set[tuple[str, str]] = set()
        for name, version in pages.versions():
            wf = self._stored(uow.workflows, name, version)
            for t in wf.spec.transitions:
                if role in t.roles and t.trigger not in optional:
                    for s in t.sources:
                        only_lead = role == "unit" and lead_only(wf, s, t.trigger)
                        (lead if only_lead else anyone).add((name, s))
        return frozenset(anyone), frozenset(lead - anyone)

    def todo(self, uow: UnitOfWork, pages: CasePages, role: str, optional: frozenset[str],
             seen_by: str | None, *, after: tuple[datetime | None, int] | None = None, limit: int = 50
             ) -> tuple[list[dict[str, Any]], bool]:
        """One page of the open cases (that unit `seen_by` sees) where `role` has a step now,
        nearest running deadline first (`CaseQuery.by_due`, after `after`), and whether more
        follow. The
        database keeps those in a state where the role has one (as the lead unit, or as any
        unit on the case), or in one of the operations every workflow shares (resuming a
        suspended case, deciding an extension request); each is then checked against the
        triggers it allows (`engine.allowed`, once per workflow version, state and what else
        decides it) — rows are read in batches until the page and one more are found, and
        views are built for the page's rows only."""
        from dataclasses import replace

        from duban.engine.operations import REQUEST, ROLES
        from duban.engine.timeliness import lead_only

        anyone, lead = self.todo_states(uow, pages, role, optional)
        q = CaseQuery(todo=anyone, lead_todo=lead, seen_by=seen_by, by_due=True,
                      suspended=role in ROLES["resume"] and "resume" not in optional,
                      data_key=REQUEST if any(role in ROLES[op] and op not in optional
                                              for op in ("approve_extension", "refuse_extension")) else None)
        known: dict[tuple[Any, ...], bool] = {}  # has a step, by what decides it (never by case)

        def has_step(case: Case) -> bool:
            co_unit = seen_by is not None and case.lead_unit != seen_by
            key = (case.workflow, case.workflow_version, case.state, case.suspended, REQUEST in case.data, co_unit)
            found = known.get(key) if "request_extension" in optional else None  # else its deadline decides too
            if found is None:
                wf = self._stored(uow.workflows, case.workflow, case.workflow_version, case.id)
                found = known[key] = any(role in roles and t not in optional
                                         and not (co_unit and lead_only(wf, case.state, t))
                                         for t, roles in human_triggers(wf, case))
            return found

        kept: list[Case] = []
        batch, cursor = limit + 1, after
        while True:
            found, _ = pages.page(self.catalog, replace(q, after_due=cursor, limit=batch))
            for case in found:
                if has_step(case):
                    kept.append(case)
                    if len(kept) > limit:
                        break
            if len(kept) > limit or len(found) < batch:
                break
            cursor, batch = (found[-1].next_due_at, found[-1].id or 0), min(2 * batch, 2000)
        shown = kept[:limit]
        return (self.views(uow, shown) if shown else []), len(kept) > limit


def _pinned_row(versions: WorkflowVersions, name: str, version: int, case_id: int | None) -> dict[str, Any]:
    row = versions.pinned(name, version)
    if row is None:
        of_case = f" of case {case_id}" if case_id is not None else ""
        raise NotFoundError(f"workflow {name} v{version}{of_case} is not in the database")
    return row
