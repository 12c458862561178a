"""What the use cases need from storage, as protocols (the ports storage implements).

The case use cases (`duban.service.cases`: open, fire, show, history, list) are written
against these, never against a database: `duban.storage.uow.SqlUnitOfWork` implements them
on SQLAlchemy Core in one transaction, `duban.testing.FakeUnitOfWork` in memory, so a use
case test runs in milliseconds with no database. Nothing here imports storage.

A unit of work is one transaction: what it reads is what it writes against (its case
repository keeps the version and stored values of each case it loaded, so an update
writes only the columns that changed, checked by version once), and nothing it wrote is
kept unless the transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from duban.engine.calendar import WorkingCalendar
from duban.engine.model import Case, Outcome

Record = dict[str, Any]  # a stored row as a mapping of column name to value
# The workflow catalog, loaded only when a filter names no pinned workflow (`duban.workflows.Catalog`;
# not named here: the engine does not depend on the workflow files).
CatalogLoader = Callable[[], Any]


class CaseRepository(Protocol):
    """Cases, their timers, and committing an engine step."""

    def get(self, case_id: int, *, for_update: bool = False) -> Case | None:
        """A case, or None; `for_update` locks its row until the transaction ends."""

    def get_many(self, case_ids: Sequence[int], *, for_update: bool = False) -> dict[int, Case]:
        """Several cases by id (those that exist), read and locked in id order."""

    def find(self, catalog: CatalogLoader, *, state: str | None, unit: str | None,
             workflow: str | None, overdue: bool | None) -> list[Case]:
        """Cases in id order matching the filters; each filter is checked (a state, workflow
        or unit that does not exist is refused, never an empty list)."""

    def commit(self, out: Outcome, now: datetime) -> Case:
        """Write one engine step: the case (a new one inserted; an existing one only if it is
        still at the version it was read at, else ConcurrencyError), timers, events, notices."""

    def timers(self, case_ids: Sequence[int]) -> dict[int, list[Record]]:
        """Each case's timers in due order (id, deadline, rung, due_at, status, …)."""


# How far a page's "how many match in all" counts (the board's 共 N 件): past it the count
# stops at COUNT_CAP + 1, shown as "more than COUNT_CAP". An exact count of a title search
# reads every matching row of the office (no b-tree index serves a substring): at 1,000,000
# cases that was most of the ledger's page (issue 16). The reports give exact totals.
COUNT_CAP = 1000


@dataclass(frozen=True)
class CaseQuery:
    """A page of cases asked of storage: the case-list filters as typed (`state`, `unit`,
    `workflow`: checked and resolved as `CaseRepository.find` does), the narrowing a list adds
    (open cases only, escalation level, a due date, a title substring, what one unit may see:
    the cases it leads or co-handles), for a to-do the (workflow, state) pairs where the
    person's role has a step (with `suspended` / `data_key`: or suspended, or holding that
    data key), and the page itself: case ids after `after`, in id order, at most `limit`."""

    state: str | None = None
    unit: str | None = None
    workflow: str | None = None
    overdue: bool | None = None
    open_only: bool = False
    level: int | None = None
    due_before: datetime | None = None
    title: str | None = None
    seen_by: str | None = None
    todo: Collection[tuple[str, str]] | None = None
    suspended: bool = False
    data_key: str | None = None
    after: int | None = None
    limit: int | None = None
    # the to-do, 已办 and 协办 (issue 16): pairs where only the lead unit (`seen_by`) has a step;
    # the cases unit `co_of` co-handles; those `acted_by` has an audit event on; and the page by
    # (nearest running deadline, id), soonest first, none running last, after `after_due`
    lead_todo: Collection[tuple[str, str]] | None = None
    co_of: str | None = None
    acted_by: str | None = None
    by_due: bool = False
    after_due: tuple[datetime | None, int] | None = None


class CasePages(Protocol):
    """Cases read a page at a time, filtered by the database (issue 16)."""

    def page(self, catalog: CatalogLoader, q: CaseQuery, *, count: bool = False) -> tuple[list[Case], int | None]:
        """The cases `q` names in id order (at most `q.limit`), and with `count` how many
        match in all (else None)."""

    def versions(self) -> list[tuple[str, int]]:
        """Every pinned (workflow, version)."""


class Directory(Protocol):
    """Users, units and who watches what."""

    def user(self, name: str) -> Record | None:
        """The user `name` (name, role, unit, disabled_at), or None."""

    def unit(self, typed: str, what: str, *, lock: bool = False) -> str:
        """The directory's name of the unit `typed` names, or NotFoundError; `what` is the
        field the name was given in (for the message)."""

    def case_units(self, lead: str, co_units: list[str]) -> tuple[str, list[str]]:
        """A new case's lead and co-units as the directory names them."""

    def watching(self, case_id: int, user: str) -> bool:
        """Whether `user` watches (关注) the case."""


class WorkflowVersions(Protocol):
    """The workflow definitions cases were opened with, pinned by (name, version)."""

    def pinned(self, name: str, version: int) -> Record | None:
        """The pinned version (fingerprint, source, body), or None."""

    def pin(self, name: str, version: int, fingerprint: str, source: str, body: dict[str, Any],
            now: datetime) -> None:
        """Pin a version new cases use."""


class AuditTrail(Protocol):
    """The audit events use cases read back (they are written by `CaseRepository.commit`)."""

    def events(self, case_id: int) -> Iterable[Record]:
        """The case's events in sequence order."""

    def decisions(self, case_ids: Sequence[int], trigger: str) -> dict[int, list[Record]]:
        """Per case, the events where `trigger` was fired."""


class UnitOfWork(Protocol):
    """One transaction's view of storage."""

    # read-only (properties), so an implementation may hold its own classes of each
    @property
    def cases(self) -> CaseRepository: ...

    @property
    def directory(self) -> Directory: ...

    @property
    def workflows(self) -> WorkflowVersions: ...

    @property
    def audit(self) -> AuditTrail: ...

    def calendar(self, rest_day_start: str) -> WorkingCalendar:
        """The office's working-day calendar as stored."""
