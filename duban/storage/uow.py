"""The unit of work on SQLAlchemy Core: one transaction's storage (`duban.engine.ports`).

A unit of work wraps the connection of one transaction and keeps an identity map for it
(cosmicpython's "a repository that keeps what it loaded"): every case read in the
transaction — through `uow.cases`, or `repository.load_case(s)` / `claims.lock_cases` on
the same connection — is kept as (the version read, the stored column values), and
`uow.cases.commit` (or `repository.commit_outcome`) then writes only the columns that
changed since, with the version checked once, by the UPDATE's ``WHERE version = ?``.
Nothing is put on the `Case` itself. A case the map does not hold (read in another
transaction) gets all its columns written.

`Database.write` opens the map for every write transaction and drops it at the end, so
every write path shares it whether or not it names a unit of work; ``with UnitOfWork(conn)``
opens one on a connection that has none (e.g. from ``engine.begin()``) for the block.
`begin(db)` is the usual way in: a write transaction with its unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Connection

from duban.engine.model import Case, Outcome
from duban.engine.ports import CaseQuery, CatalogLoader, Record
from duban.storage import audit_log, watches
from duban.storage import repository as repo
from duban.storage.database import SEEN

if TYPE_CHECKING:
    from duban.engine.calendar import WorkingCalendar
    from duban.storage.database import Database
    from duban.storage.repository import Batch, Seen

# Where a step's routed notices go (`duban.delivery.outbox.Outbox`): given, or asked for at the
# first commit (reading the office's settings only when a step is about to be written).
Outbox: TypeAlias = repo.NoticeWriter | Callable[[], repo.NoticeWriter | None] | None


class Cases:
    """The case repository of one transaction (`ports.CaseRepository`)."""

    def __init__(self, conn: Connection, outbox: Outbox) -> None:
        self.conn = conn
        self.outbox = outbox

    def get(self, case_id: int, *, for_update: bool = False) -> Case | None:
        return repo.load_case(self.conn, case_id, for_update=for_update)

    def get_many(self, case_ids: Sequence[int], *, for_update: bool = False) -> dict[int, Case]:
        return repo.load_cases(self.conn, case_ids, for_update=for_update)

    def find(self, catalog: CatalogLoader, *, state: str | None, unit: str | None,
             workflow: str | None, overdue: bool | None) -> list[Case]:
        from duban.service import filters  # the checked filters: exit 2/3 for a name that does not exist

        f = filters.cases(self.conn, catalog, state=state, unit_name=unit, workflow=workflow)
        if f.empty:
            return []
        from duban.storage import listing

        return listing.cases(self.conn, states=f.states, unit=f.unit, workflow=f.workflow, overdue=overdue)

    def page(self, catalog: CatalogLoader, q: CaseQuery, *, count: bool = False) -> tuple[list[Case], int | None]:
        """`ports.CasePages.page`: the filters checked as `find` checks them, the page in SQL."""
        from duban.service import filters
        from duban.storage import listing

        f = filters.cases(self.conn, catalog, state=q.state, unit_name=q.unit, workflow=q.workflow)
        if f.empty:
            return [], 0 if count else None
        return listing.page(self.conn, q, states=f.states, unit=f.unit, workflow=f.workflow, count=count)

    def versions(self) -> list[tuple[str, int]]:
        from duban.storage import listing

        return listing.versions(self.conn)

    def commit(self, out: Outcome, now: datetime, batch: Batch | None = None) -> Case:
        """`repository.commit_outcome` against this transaction's identity map."""
        outbox = self.outbox() if callable(self.outbox) else self.outbox
        return repo.commit_outcome(self.conn, out, now, batch, outbox)

    def timers(self, case_ids: Sequence[int]) -> dict[int, list[Record]]:
        return repo.timers_of(self.conn, case_ids)


class Directory:
    """Users, units and watches (`ports.Directory`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def user(self, name: str) -> Record | None:
        return repo.get_user(self.conn, name)

    def unit(self, typed: str, what: str, *, lock: bool = False) -> str:
        from duban.service import directory

        return directory.unit(self.conn, typed, what, lock=lock)

    def case_units(self, lead: str, co_units: list[str]) -> tuple[str, list[str]]:
        from duban.service import directory

        return directory.case_units(self.conn, lead, co_units)

    def watching(self, case_id: int, user: str) -> bool:
        return watches.watching(self.conn, case_id, user)


class WorkflowVersions:
    """Pinned workflow versions (`ports.WorkflowVersions`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def pinned(self, name: str, version: int) -> Record | None:
        return repo.pinned_workflow(self.conn, name, version)

    def pin(self, name: str, version: int, fingerprint: str, source: str, body: dict[str, Any],
            now: datetime) -> None:
        repo.pin_workflow(self.conn, name, version, fingerprint, source, body, now)


class AuditTrail:
    """The audit events read back (`ports.AuditTrail`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def events(self, case_id: int) -> Iterable[Record]:
        return audit_log.iterate(self.conn, case_id=case_id)

    def decisions(self, case_ids: Sequence[int], trigger: str) -> dict[int, list[Record]]:
        return audit_log.decisions(self.conn, case_ids, trigger)


class UnitOfWork:
    """One transaction's storage (`ports.UnitOfWork`), on the connection it wraps.

    The transaction itself is the caller's (`Database.write` / `read`, or `begin`): it
    commits when that block ends. Entering this object opens an identity map if the
    transaction has none yet (`Database.write` opens one), for the ``with`` block."""

    def __init__(self, conn: Connection, outbox: Outbox = None) -> None:
        self.conn = conn
        self.cases = Cases(conn, outbox)
        self.directory = Directory(conn)
        self.workflows = WorkflowVersions(conn)
        self.audit = AuditTrail(conn)
        self._opened = False

    @property
    def seen(self) -> Seen:
        """The identity map: case id -> (version, stored column values) as last read or written."""
        found = repo.seen_in(self.conn)
        if found is None:
            raise RuntimeError("the unit of work is not open (use it in a with block)")
        return found

    def calendar(self, rest_day_start: str) -> WorkingCalendar:
        from duban.storage import calendar_store  # only a step needs it, not reading a case

        return calendar_store.load(self.conn, rest_day_start)

    def __enter__(self) -> UnitOfWork:
        # A unit of work opened inside another on the same transaction shares its map.
        if repo.seen_in(self.conn) is None:
            self.conn.info[SEEN] = {}
            self._opened = True
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._opened:
            self.conn.info.pop(SEEN, None)  # pooled connections keep info: nothing outlives the transaction
            self._opened = False


@contextmanager
def begin(db: Database, outbox: Outbox = None) -> Iterator[UnitOfWork]:
    """A write transaction and its unit of work: committed when the block ends, rolled back on any error."""
    with db.write() as conn, UnitOfWork(conn, outbox) as uow:
        yield uow


@contextmanager
def read(db: Database) -> Iterator[UnitOfWork]:
    """A read transaction seen through the same ports (it writes nothing)."""
    with db.read() as conn:
        yield UnitOfWork(conn)
