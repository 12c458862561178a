"""The application: wires the database, the workflow catalog, the engine and the clock.

Every use case a person or the scheduler runs is one method here, the façade the CLI, the
board, the scheduler, the demo and the tests call. The case use cases themselves are in
`duban.service.cases`, written against the storage ports (`duban.engine.ports`): this class
opens their unit of work (`duban.storage.uow`: one transaction), reads the clock once for
them, and logs what they did, so a refused or failed command changes nothing.

Only what reading a case needs is imported here (README "Performance": `duban case show`
starts in under 0.3 s); the engine's service (pydantic), the workflow catalog (YAML), the
calendar and structlog load when a command first needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from duban.clock import Clock
from duban.engine.audit import ChainBreak
from duban.engine.model import Case
from duban.engine.ports import CaseQuery
from duban.engine.ports import UnitOfWork as UnitOfWorkPort
from duban.engine.workflow import Workflow
from duban.logconfig import get_logger
from duban.service.cases import CaseService, Transitioned
from duban.storage import audit_log, uow
from duban.storage import repository as repo
from duban.storage.database import Database

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from duban.engine.service import Actor, Engine
    from duban.storage.repository import NoticeWriter
    from duban.workflows import Catalog

__all__ = ["App", "TickResult", "Transitioned"]

log = get_logger("duban")
_UNREAD = object()  # App.outbox not read from the settings yet


@dataclass(frozen=True)
class TickResult:
    fired_timers: int
    lines: list[str]


class App:
    """One office's duban: a database, its workflows, its calendar, its clock and zone."""

    def __init__(self, db: Database, clock: Clock, tz: tzinfo, catalog: Catalog | None = None) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz
        self._catalog = catalog
        self._engine: Engine | None = None  # built from the stored calendar; `import_calendar` resets it
        self._outbox: Any = _UNREAD
        self.cases = CaseService(tz, lambda: self.catalog, self._engine_of)

    @property
    def _pinned(self) -> dict[tuple[str, int], Workflow]:
        return self.cases.pinned  # the validated definitions read so far (`CaseService.workflow_of`)

    @property
    def _shown(self) -> dict[tuple[str, int], Workflow]:
        return self.cases.shown  # the stored ones read as they are, to show cases with

    # -- wiring ------------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from duban.workflows import Catalog

            self._catalog = Catalog()
        return self._catalog

    @property
    def outbox(self) -> NoticeWriter | None:
        """The office's notice routes (SPEC §14), read once from DUBAN_SETTINGS: notices of a
        routed kind are written with their deliveries. A bad `notify` section never blocks a
        step: it is logged here, and `notify run` / `scheduler run` refuse it at start."""
        if self._outbox is _UNREAD:
            from duban.delivery.settings import SettingsError, load, settings_path
            from duban.errors import DefinitionError

            try:
                notify = load(settings_path())
            except (SettingsError, DefinitionError) as exc:
                log.warning("notify.settings_unusable", reason=str(exc), deliveries="none written until fixed")
                notify = None
            if notify is None or not notify.routes:
                self._outbox = None
            else:
                from duban.delivery.outbox import Outbox

                self._outbox = Outbox(notify)
        return self._outbox  # type: ignore[no-any-return]

    @outbox.setter
    def outbox(self, value: NoticeWriter | None) -> None:
        self._outbox = value

    def _engine_of(self, work: UnitOfWorkPort) -> Engine:
        if self._engine is None:
            from duban.service.timers import office_engine  # the one way an engine is built

            self._engine = office_engine(work, self.tz)
        return self._engine

    def engine(self, conn: Connection) -> Engine:
        return self._engine if self._engine is not None else self._engine_of(uow.UnitOfWork(conn))

    def workflow_of(self, conn: Connection, case: Case) -> Workflow:
        """The definition a case is pinned to (from the database, never from a changed file)."""
        found = self.cases.pinned.get((case.workflow, case.workflow_version))
        return found if found is not None else self.cases.workflow_of(uow.WorkflowVersions(conn), case)

    def actor(self, conn: Connection, name: str | None) -> Actor:
        return self.cases.actor(uow.Directory(conn), name)

    def _case(self, conn: Connection, case_id: int) -> Case:
        return self.cases.case(uow.UnitOfWork(conn), case_id)

    def _outbox_later(self) -> NoticeWriter | None:
        return self.outbox  # read at the first commit that writes notices, as before

    # -- operator ----------------------------------------------------------------------
    def init(self) -> dict[str, Any]:
        """Create or upgrade the schema; seed the calendar on first run (idempotent)."""
        from duban.exports.calendar_files import seed_from_chinesecalendar
        from duban.storage import calendar_store

        self.db.migrate()
        now = self.clock.now()
        with self.db.write() as conn:
            seeded = calendar_store.is_empty(conn)
            if seeded:
                calendar_store.store(conn, seed_from_chinesecalendar(), now)
            years = calendar_store.known_years(conn) if seeded else []
        log.info("db.initialised", url=self.db.display_url, calendar_seeded=seeded)
        return {"database": self.db.display_url, "calendar_seeded": seeded,
                "calendar_years": [years[0], years[-1]] if years else None}

    def add_user(self, name: str, role: str, unit: str | None, *, via: str = "python",
                 email: str | None = None, mobile: str | None = None) -> dict[str, Any]:
        """Add a user (and a unit user's unit when it is new); audited (`duban.service.directory`).
        `email` is where the notices routed to the user's unit or role are mailed (SPEC §14)."""
        from duban.service import directory

        if email is not None:
            from duban.delivery.outbox import checked_email

            email = checked_email(email)
        if mobile is not None:
            from duban.access import mobile as mobiles

            mobile = mobiles.checked(mobile)  # exit 2 before anything is written
        with self.db.write() as conn:
            added = directory.add_user(conn, name, role, unit, self.clock.now(), via)
            if email is not None:
                repo.set_email(conn, added["name"], email)
                added = {**added, "email": email}
            if mobile is not None:
                mobiles.store(conn, added["name"], mobile)
                added = {**added, "mobile": mobile}
        log.info("user.added", user=added["name"], role=role, unit=added["unit"])
        return added

    def add_unit(self, name: str, *, via: str = "python") -> dict[str, Any]:
        from duban.service import directory

        with self.db.write() as conn:
            return directory.add_unit(conn, name, self.clock.now(), via)

    def rename_unit(self, old: str, new: str, *, via: str = "python") -> dict[str, Any]:
        """Rename a unit everywhere it is held (cases, users, notices); audited, old name kept."""
        from duban.service import directory

        with self.db.write() as conn:
            renamed = directory.rename_unit(conn, old, new, self.clock.now(), via)
        log.info("unit.renamed", old=renamed["old"], new=renamed["new"], cases=len(renamed["cases"]))
        return renamed

    def units(self) -> list[dict[str, Any]]:
        from duban.present.views import iso
        from duban.storage import units

        with self.db.read() as conn:
            return [{**u, "created_at": iso(u["created_at"], self.tz)} for u in units.listing(conn)]

    def users(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return [{"name": u["name"], "role": u["role"], "unit": u["unit"]} for u in repo.list_users(conn)]

    # -- cases -------------------------------------------------------------------------
    def open_case(
        self, workflow: str, *, title: str, lead_unit: str, co_units: list[str], due: str | None,
        values: dict[str, str], actor: str | None, milestones: list[tuple[str, str]] | None = None,
        report: str | None = None,
    ) -> dict[str, Any]:
        wf = self.catalog.latest(workflow)
        now = self.clock.now()
        with uow.begin(self.db, self._outbox_later) as work:
            case, who = self.cases.open_case(work, wf, title=title, lead_unit=lead_unit, co_units=co_units, due=due,
                                             values=values, actor=actor, now=now, milestones=milestones, report=report)
            shown = self.cases.views(work, [case])[0]
        self._warn_approximate(case)
        log.info("case.opened", case_id=case.id, workflow=wf.name, actor=who.name)
        return shown

    def fire(self, case_id: int, trigger: str, *, actor: str | None, note: str = "",
             values: dict[str, str] | None = None, expected_version: int | None = None,
             seen: Callable[[Case], bool] | None = None) -> dict[str, Any]:
        """Fire `trigger` on a case as `actor`. Returns the case as shown after the change
        (what `case fire --json` prints), read in the same transaction. `seen`: whether the
        caller may see the case (else "no case", first: `CaseService.step`)."""
        with uow.begin(self.db, self._outbox_later) as work:
            case, step = self.cases.step(work, case_id, trigger, actor, note, values, expected_version,
                                         self.clock.now(), seen)
            shown = self.cases.step_view(work, case, step)
        log.info("case.transitioned", case_id=case_id, trigger=trigger, actor=step.actor, state=step.state)
        return shown

    def transition(self, case_id: int, trigger: str, *, actor: str | None, note: str = "",
                   values: dict[str, str] | None = None, expected_version: int | None = None) -> Transitioned:
        """The same step as `fire` — the same checks, rows and audit event — for scripts and
        integrations acting on many cases: returns only where the case went, without reading
        its timers back to show it (that view costs about as much Python time as the step)."""
        with uow.begin(self.db, self._outbox_later) as work:
            _, step = self.cases.step(work, case_id, trigger, actor, note, values, expected_version,
                                      self.clock.now())
        log.info("case.transitioned", case_id=case_id, trigger=trigger, actor=step.actor, state=step.state)
        return step

    def _warn_approximate(self, case: Case) -> None:
        for d in case.deadlines.values():
            if d.approximate:
                due = d.due_at.astimezone(self.tz)  # the office's time, as every other line a person may read
                log.warning("deadline.approximate", case_id=case.id, deadline=d.name, due_at=due.isoformat(),
                            reason=f"no working-day calendar for {due.year}: weekends only")

    def show(self, case_id: int) -> dict[str, Any]:
        with uow.read(self.db) as work:
            return self.cases.show(work, case_id)

    def history(self, case_id: int) -> list[dict[str, Any]]:
        with uow.read(self.db) as work:
            return self.cases.history(work, case_id)

    def list_cases(self, *, state: str | None = None, unit: str | None = None, workflow: str | None = None,
                   overdue: bool | None = None, after: int | None = None, limit: int | None = None
                   ) -> list[dict[str, Any]]:
        """Cases by state (identifier or label, any workflow's), unit and workflow; each filter
        is checked: exit 2 for a state or workflow that does not exist, 3 for a unit (`duban.service.filters`).
        With `after` / `limit`: one keyset page in id order (ids after `after`, at most `limit`),
        asked of the database and shown for its rows only (`case list --after --limit`)."""
        with uow.read(self.db) as work:
            if after is None and limit is None:
                return self.cases.listing(work, state=state, unit=unit, workflow=workflow, overdue=overdue)
            q = CaseQuery(state=state, unit=unit, workflow=workflow, overdue=overdue, after=after, limit=limit)
            return self.cases.page(work, work.cases, q)[0]

    def case_page(self, q: CaseQuery, *, count: bool = False) -> tuple[list[dict[str, Any]], int | None]:
        """One page of cases as shown, filtered and paged by the database (`ports.CaseQuery`;
        its state, unit and workflow checked as `list_cases` checks them), and with `count`
        how many match in all."""
        with uow.read(self.db) as work:
            return self.cases.page(work, work.cases, q, count=count)

    def todo_cases(self, role: str, optional: frozenset[str], seen_by: str | None, *,
                   after: tuple[datetime | None, int] | None = None, limit: int = 50
                   ) -> tuple[list[dict[str, Any]], bool]:
        """A page of the open cases where `role` may have a step now, nearest running deadline
        first, after `after` (that instant, case id: `CaseService.todo`), as shown; and whether
        more follow."""
        with uow.read(self.db) as work:
            return self.cases.todo(work, work.cases, role, optional, seen_by, after=after, limit=limit)

    def notices(self, *, unit: str | None = None, case_id: int | None = None) -> list[dict[str, Any]]:
        from duban.present.views import notice_json
        from duban.service import filters

        with self.db.read() as conn:
            recipient = filters.notice_recipient(conn, unit) if unit is not None else None
            if case_id is not None:
                filters.case_exists(conn, case_id)
            from duban.service.receipts import reads

            found = repo.list_notices(conn, unit=recipient, case_id=case_id)
            receipts = reads(conn, [n["id"] for n in found])  # read status (标为已读), SPEC §13
            return [{**notice_json(n, self.tz), "read_by": [
                {"reader": r["reader"], "read_at": r["read_at"].astimezone(self.tz).isoformat()} for r in receipts[n["id"]]]}
                for n in found]

    def watched(self, user: str) -> list[dict[str, Any]]:
        """The cases `user` watches (关注), most recently watched first."""
        from duban.storage import watches

        with uow.read(self.db) as work:
            ids = watches.watched_by(work.conn, user)
            found = work.cases.get_many(ids)
            return self.cases.views(work, [found[i] for i in ids if i in found])

    def watching(self, case_id: int, user: str) -> bool:
        from duban.storage import watches

        with self.db.read() as conn:
            return watches.watching(conn, case_id, user)

    # -- timers ------------------------------------------------------------------------
    def tick(self, batch: int = 200, chunk: int = 100) -> TickResult:
        """Fire every timer due up to now, oldest first, each once; safe to repeat, and safe
        next to running schedulers: it claims and fires exactly as a scheduler node does."""
        from duban.service.timers import Sweep, default_node

        result = Sweep(self, f"tick-{default_node()}", batch=batch, chunk=chunk, lease=60).run()
        return TickResult(result.fired, result.lines)

    # -- calendar ----------------------------------------------------------------------
    def import_calendar(self, path: str | Path) -> dict[str, Any]:
        """Load a year's schedule (or local overrides) and recompute every approximate
        deadline it now covers, in one transaction (`duban.service.calendar`)."""
        from duban.service.calendar import import_calendar

        result = import_calendar(self, path)
        log.info("calendar.imported", years=result["years"], days=result["days"], recomputed=result["recomputed_cases"])
        return result

    def calendar(self, year: int) -> dict[str, Any]:
        from duban.storage import calendar_store

        with self.db.read() as conn:
            info, days = calendar_store.year(conn, year)
        return {
            "year": year, "known": info is not None, "source": info["source"] if info else None,
            "days": [{"date": d["day"].isoformat(), "kind": d["kind"],
                      "kind_label": "放假" if d["kind"] == "holiday" else "调休上班", "name": d["name"]} for d in days],
        }

    def replay(self, case_id: int) -> list[str]:
        """Rebuild the case from its audit events under its pinned definition; what differs."""
        from duban.engine.replay import differences, replay

        with self.db.read() as conn:
            stored = self._case(conn, case_id)
            wf = self.workflow_of(conn, stored)
            events = list(audit_log.iterate(conn, case_id=case_id))
            return differences(stored, replay(self.engine(conn), wf, events))

    # -- audit -------------------------------------------------------------------------
    def verify(self, jobs: int | None = 1, *, parallel_from: int | None = None) -> tuple[int, str | None, ChainBreak | None]:
        """The chain checked from GENESIS: (events checked, last good hash, first break).

        ``jobs`` worker processes check ranges of it (None: one per CPU), for chains of at
        least ``parallel_from`` events; 1 checks it here (`duban.exports.parallel_verify`)."""
        from duban.exports.parallel_verify import PARALLEL_FROM, verify_database

        return verify_database(self.db, jobs, parallel_from=PARALLEL_FROM if parallel_from is None else parallel_from)

    def events(self) -> Iterator[dict[str, Any]]:
        with self.db.read() as conn:
            yield from audit_log.iterate(conn)
