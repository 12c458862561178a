"""Storage on SQLite and PostgreSQL: one transaction per step, the optimistic version
check, durable timers and the audit chain in the database (SPEC §6.1, §7, §9)."""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, inspect, select, update

from duban.clock import ManualClock
from duban.engine.model import Case, Outcome
from duban.errors import ConcurrencyError, RefusedError
from duban.service.app import App, Transitioned
from duban.storage import repository as repo
from duban.storage.database import SEEN, Database
from duban.storage.tables import AUDIT, TIMERS
from duban.storage.uow import UnitOfWork
from tests.conftest import COUNTED_TABLES, Duban, row_counts

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=TZ))  # a Monday


@pytest.fixture
def app(any_db_url: str, clock: ManualClock) -> Iterator[App]:
    """An initialised database with an office user and the lead unit's user."""
    db = Database(any_db_url)
    a = App(db, clock, TZ)
    a.init()
    a.add_user("wang", "office", None)
    a.add_user("fgj", "unit", "区发改局")
    a.add_unit("区财政局")
    yield a
    db.dispose()


def open_case(app: App) -> int:
    shown = app.open_case("supervision", title="建立政策问题台帐", lead_unit="区发改局", co_units=["区财政局"],
                          due="5wd", values={}, actor="wang")
    return int(shown["id"])


def directory_events(app: App) -> int:
    """The audit events of the directory (users and units added: no case) before the cases' own."""
    return sum(1 for e in app.events() if e["case_id"] is None)


def collect_cli_leftovers() -> None:
    """Collect what in-process CLI runs left behind, inside the current test (see TestConnections)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


class TestMigrations:
    @pytest.mark.filterwarnings("ignore::ResourceWarning")
    def test_init_twice_changes_nothing(self, any_db_url: str) -> None:
        """`duban init` on an initialised database succeeds again and leaves every table as it was."""
        duban = Duban(any_db_url)
        first = duban.ok("init", "--json").json
        assert first["calendar_seeded"] is True
        duban.ok("user", "add", "wang", "--role", "office")
        before = row_counts(any_db_url)
        second = duban.ok("init", "--json").json
        assert second["calendar_seeded"] is False
        assert row_counts(any_db_url) == before
        engine = create_engine(any_db_url)
        try:
            tables = set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert set(COUNTED_TABLES) | {"calendar_days", "calendar_years"} <= tables
        collect_cli_leftovers()


class TestConnections:
    def test_a_command_closes_its_database_connections(self, any_db_url: str) -> None:
        """A finished `duban` command leaves no database connection open for the garbage collector
        (on PostgreSQL each one holds a server connection slot until then)."""
        duban = Duban(any_db_url)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            duban.ok("init")
            duban.ok("case", "list", "--json")
            gc.collect()
        leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        assert leaked == []


class TestDurableSteps:
    def test_open_and_fire_write_case_timers_and_chain(self, app: App, any_db_url: str, clock: ManualClock) -> None:
        """Opening writes the case, its units, one timer per rung and an audit event; accepting
        cancels the sign-for timer; the chain verifies and instants read back in Beijing time."""
        directory = row_counts(any_db_url)["audit_events"]  # the users and units added, audited
        case_id = open_case(app)
        counts = row_counts(any_db_url)
        assert (counts["cases"], counts["case_units"], counts["timers"], counts["audit_events"] - directory) == (1, 2, 5, 1)
        assert counts["workflow_versions"] == 1
        clock.advance(hours=1)
        shown = app.fire(case_id, "accept", actor="fgj")
        assert shown["state"] == "in_progress" and shown["version"] == 2
        reread = app.show(case_id)
        assert reread["due_at"] == "2026-03-09T23:59:59+08:00"
        assert reread["opened_at"] == "2026-03-02T09:00:00+08:00"
        assert {t["kind"].split(":")[0]: t["status"] for t in reread["timers"]}["sign_for"] == "cancelled"
        count, head, broken = app.verify()
        assert (count - directory_events(app), broken) == (2, None) and head is not None

    def test_tick_fires_each_due_timer_once(self, app: App, any_db_url: str, clock: ManualClock) -> None:
        """After a month of downtime one tick fires all five rungs in due order; a second fires nothing."""
        case_id = open_case(app)
        clock.advance(days=30)
        first = app.tick()
        assert first.fired_timers == 5
        with app.db.read() as conn:
            timers = repo.timers_of(conn, [case_id])[case_id]
        assert [t["status"] for t in timers] == ["fired"] * 5
        escalations = [e for e in app.events() if e["action"] in ("escalate", "overtaken")]  # overtaken: no notice
        due_order = [e["data"]["timer_due_at"] for e in escalations]
        assert due_order == sorted(due_order) and len(due_order) == 5
        before = row_counts(any_db_url)
        assert app.tick().fired_timers == 0
        assert row_counts(any_db_url) == before
        shown = app.show(case_id)
        assert (shown["state"], shown["escalation_level"], shown["overdue"]) == ("overdue", 4, True)
        assert app.verify()[2] is None


def commit_stale_accept(app: App, stale: Case) -> None:
    """What a second writer does with the case it read before the first writer committed."""
    wf = app.catalog.latest("supervision")
    with app.db.write() as conn:
        out = app.engine(conn).fire(wf, stale, "accept", actor=app.actor(conn, "fgj"), now=app.clock.now())
        repo.commit_outcome(conn, out, app.clock.now())


def open_then_crash(app: App) -> None:
    """Write a whole opening step, then fail before the transaction commits."""
    wf = app.catalog.latest("supervision")
    now = app.clock.now()
    with app.db.write() as conn:
        out = app.engine(conn).open_case(wf, title="t", lead_unit="区发改局", co_units=[], due="5wd", values={},
                                         actor=app.actor(conn, "wang"), now=now)
        repo.commit_outcome(conn, out, now)
        assert len(conn.execute(select(TIMERS.c.id)).all()) == 5  # written, inside this transaction
        raise RuntimeError("crash before commit")


def tamper(app: App) -> int:
    """Three events of a case, then the second one's actor edited behind duban's back; its seq."""
    case_id = open_case(app)
    app.fire(case_id, "accept", actor="fgj")
    app.fire(case_id, "report", actor="fgj")
    assert app.verify()[0] - directory_events(app) == 3 and app.verify()[2] is None
    edited = directory_events(app) + 2
    with app.db.write() as conn:
        conn.execute(update(AUDIT).where(AUDIT.c.seq == edited).values(actor="wang"))
    return edited


class TestTransition:
    """`App.transition`: the step `fire` takes, returning only where the case went."""

    def test_transition_writes_what_fire_writes(self, app: App, any_db_url: str, clock: ManualClock) -> None:
        """Accepting one case with `fire` and another with `transition` leaves both cases,
        their timers and their audit events alike, and the chain verifies."""
        by_fire, by_transition = open_case(app), open_case(app)
        clock.advance(hours=1)
        app.fire(by_fire, "accept", actor="fgj", note="收到")
        step = app.transition(by_transition, "accept", actor="fgj", note="收到")
        assert step == Transitioned(by_transition, "accept", "fgj", "assigned", "in_progress", 2)
        one, other = app.show(by_fire), app.show(by_transition)
        for field in ("state", "version", "escalation_level", "deadlines", "data"):
            assert one[field] == other[field], field
        assert [(t["kind"], t["status"]) for t in one["timers"]] == [(t["kind"], t["status"]) for t in other["timers"]]
        fired, transitioned = app.history(by_fire)[-1], app.history(by_transition)[-1]
        for field in ("at", "actor", "role", "action", "trigger", "from_state", "to_state", "note", "data"):
            assert fired[field] == transitioned[field], field
        assert app.verify() == (4 + directory_events(app), app.verify()[1], None)

    def test_a_refused_transition_changes_nothing(self, app: App, any_db_url: str) -> None:
        """A trigger the case's state does not allow is refused with the allowed ones named; no row changes."""
        case_id = open_case(app)
        before = row_counts(any_db_url)
        with pytest.raises(RefusedError, match="accept"):
            app.transition(case_id, "report", actor="fgj")
        assert row_counts(any_db_url) == before
        assert app.show(case_id)["state"] == "assigned"


def open_files(sqlite_url: str) -> int:
    """How many file handles this process holds on the SQLite database file."""
    path = os.path.realpath(sqlite_url.split("///", 1)[1])
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == path) if fds.is_dir() else 0


class TestWriteConnections:
    """SQLite: one write connection, kept between transactions, taken by one thread at a time."""

    def test_after_a_failed_write_the_next_one_commits(self, sqlite_url: str, clock: ManualClock) -> None:
        """A step that fails before its commit leaves nothing, and the same thread's next step commits."""
        app = App(Database(sqlite_url), clock, TZ)
        app.init()
        app.add_user("wang", "office", None)
        app.add_user("fgj", "unit", "区发改局")
        app.add_unit("区财政局")
        before = row_counts(sqlite_url)
        with pytest.raises(RuntimeError, match="crash"):
            open_then_crash(app)
        assert row_counts(sqlite_url) == before
        case_id = open_case(app)
        assert app.transition(case_id, "accept", actor="fgj").state == "in_progress"
        assert row_counts(sqlite_url)["cases"] == before["cases"] + 1
        app.db.dispose()

    def test_threads_write_in_turn_and_every_step_lands(self, sqlite_url: str, clock: ManualClock) -> None:
        """Four threads accept and report twenty cases between them: every step commits once, the chain verifies."""
        app = App(Database(sqlite_url), clock, TZ)
        app.init()
        app.add_user("wang", "office", None)
        app.add_user("fgj", "unit", "区发改局")
        app.add_unit("区财政局")
        ids = [open_case(app) for _ in range(20)]
        failures: list[BaseException] = []

        def work(mine: list[int]) -> None:
            try:
                for case_id in mine:
                    app.transition(case_id, "accept", actor="fgj")
                    app.transition(case_id, "report", actor="fgj")
            except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(ids[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert {app.show(i)["state"] for i in ids} == {"reported"}
        assert app.verify()[0] == 20 * 3 + directory_events(app) and app.verify()[2] is None
        app.db.dispose()

    def test_threads_that_end_do_not_keep_connections(self, sqlite_url: str, clock: ManualClock) -> None:
        """Thirty short-lived threads write one after another (a thread per request, say): they
        share the one write connection, so the pool never runs dry (it holds 15) and the file
        handles stay few; `dispose` closes them all."""
        app = App(Database(sqlite_url), clock, TZ)
        app.init()
        for i in range(30):
            one = threading.Thread(target=app.add_user, args=(f"u{i}", "office", None))
            one.start()
            one.join(timeout=60)
        assert len(app.users()) == 30
        assert open_files(sqlite_url) <= 8
        app.db.dispose()
        assert open_files(sqlite_url) == 0

    def test_a_disposed_database_writes_again(self, sqlite_url: str, clock: ManualClock) -> None:
        """`dispose` closes the kept connections; the next write opens a fresh one."""
        app = App(Database(sqlite_url), clock, TZ)
        app.init()
        app.add_user("wang", "office", None)
        app.db.dispose()
        app.add_user("fgj", "unit", "区发改局")
        assert [u["name"] for u in app.users()] == ["fgj", "wang"]
        app.db.dispose()


    def test_a_writer_kept_waiting_too_long_gets_a_clear_error(self, sqlite_url: str, clock: ManualClock,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
        """While another thread holds the write for longer than the busy limit, a write is
        refused as busy (exit 1) and changes nothing; once the first is done, writes go on."""
        from duban.errors import StorageError
        from duban.storage import database

        app = App(Database(sqlite_url), clock, TZ)
        app.init()
        monkeypatch.setattr(database, "BUSY_SECONDS", 0.2)
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            with app.db.write():
                holding.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(10)
        with pytest.raises(StorageError, match="busy") as caught:
            app.add_user("wang", "office", None)
        assert caught.value.exit_code == 1
        release.set()
        holder.join(10)
        assert app.users() == []
        app.add_user("wang", "office", None)
        assert [u["name"] for u in app.users()] == ["wang"]
        app.db.dispose()


    def test_dispose_waits_for_the_write_in_progress(self, sqlite_url: str, clock: ManualClock) -> None:
        """`dispose` while another thread writes lets that write finish and commit, then closes."""
        app = App(Database(sqlite_url), clock, TZ)
        app.init()
        writing, release, disposed = threading.Event(), threading.Event(), threading.Event()

        def write() -> None:
            with app.db.write() as conn:
                repo.add_user(conn, "wang", "office", None, clock.now())
                writing.set()
                release.wait(10)

        def dispose() -> None:
            app.db.dispose()
            disposed.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert writing.wait(10)
        closer = threading.Thread(target=dispose)
        closer.start()
        assert not disposed.wait(0.3)  # still waiting for the write
        release.set()
        writer.join(10)
        closer.join(10)
        assert disposed.is_set()
        assert [u["name"] for u in app.users()] == ["wang"]
        app.db.dispose()


class TestChain:
    @pytest.mark.filterwarnings("ignore::ResourceWarning")  # see the next test
    def test_tampered_event_is_found(self, app: App) -> None:
        """The chain read back from the database verifies, and an edited row breaks it at that row."""
        edited = tamper(app)
        broken = app.verify()[2]
        assert broken is not None and broken.seq == edited

    def test_verifying_a_broken_chain_closes_its_cursor(self, app: App) -> None:
        """Stopping at the first bad event leaves no database cursor open behind it."""
        tamper(app)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            assert app.verify()[2] is not None
            gc.collect()
        assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


class TestAtomicity:
    def test_stale_version_conflicts_and_writes_nothing(self, app: App, any_db_url: str) -> None:
        """Two people read the case; the first to write wins, the second gets ConcurrencyError and no row changes."""
        case_id = open_case(app)
        with app.db.read() as conn:
            stale = repo.load_case(conn, case_id)
        assert stale is not None
        app.fire(case_id, "accept", actor="fgj")
        before = row_counts(any_db_url)
        with pytest.raises(ConcurrencyError, match=f"case {case_id} changed"):
            commit_stale_accept(app, stale)
        assert row_counts(any_db_url) == before
        assert app.show(case_id)["version"] == 2
        assert app.verify()[2] is None

    def test_expected_version_is_checked(self, app: App, any_db_url: str) -> None:
        """`case fire --expect-version` with a version someone else already moved past is refused (exit 5)."""
        case_id = open_case(app)
        app.fire(case_id, "accept", actor="fgj")
        before = row_counts(any_db_url)
        with pytest.raises(ConcurrencyError) as caught:
            app.fire(case_id, "report", actor="fgj", expected_version=1)
        assert caught.value.exit_code == 5
        assert row_counts(any_db_url) == before
        assert app.show(case_id)["state"] == "in_progress"

    def test_case_timers_and_events_commit_together(self, app: App, any_db_url: str) -> None:
        """If the transaction fails after the step was written, neither the case, its timers nor its audit event remain."""
        before = row_counts(any_db_url)
        with pytest.raises(RuntimeError, match="crash"):
            open_then_crash(app)
        assert row_counts(any_db_url) == before


class TestUnitOfWork:
    """A case update writes only the columns that changed since the unit of work read the case;
    what it read is kept in the unit of work, never on the `Case` (issue 12)."""

    @staticmethod
    def case_updates(monkeypatch: pytest.MonkeyPatch) -> list[str]:
        """The UPDATE cases statements sent to the driver from now on (every one goes through `sql.run`)."""
        from duban.storage import sql

        sent: list[str] = []
        original = sql.run

        def recording(conn: Any, text: str, *args: Any, **kwargs: Any) -> Any:
            if text.startswith("UPDATE cases"):
                sent.append(text)
            return original(conn, text, *args, **kwargs)

        monkeypatch.setattr(sql, "run", recording)
        return sent

    def test_an_update_writes_only_the_changed_columns(self, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
        """Accepting a case sets its state, deadlines, nearest deadline (the 签收时限 ended), version and
        updated_at, and leaves the title and units alone."""
        case_id = open_case(app)
        sent = self.case_updates(monkeypatch)
        app.transition(case_id, "accept", actor="fgj")
        assert len(sent) == 1
        assert sent[0].startswith('UPDATE cases SET "state" = ?, "deadlines" = ?, "next_due_at" = ?, "version" = ?, '
                                  '"updated_at" = ?')
        assert '"title"' not in sent[0] and '"lead_unit"' not in sent[0]

    def test_a_case_read_elsewhere_gets_every_column_written(self, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
        """A case the transaction's unit of work did not read (read in another transaction) is written whole, and lands."""
        case_id = open_case(app)
        with app.db.read() as conn:
            case = repo.load_case(conn, case_id)
        assert case is not None
        case.title = "改过的标题"
        sent = self.case_updates(monkeypatch)
        with app.db.write() as conn, UnitOfWork(conn) as work:
            work.cases.commit(Outcome(case, units_changed=True), app.clock.now())
        assert '"title" = ?' in sent[0] and '"co_units" = ?' in sent[0]
        assert app.show(case_id)["title"] == "改过的标题"

    def test_the_identity_map_lives_as_long_as_its_transaction(self, app: App) -> None:
        """A write transaction's map holds what was read at its version and ends with it; a unit of work
        on a connection without one opens one for its block."""
        case_id = open_case(app)
        with app.db.write() as conn:
            with UnitOfWork(conn) as work:
                case = work.cases.get(case_id)
                assert case is not None and work.seen[case_id][0] == case.version == 1
            assert repo.seen_in(conn) is work.seen  # the transaction's, shared by everything in it
            info = conn.info  # the pooled connection's: it outlives the transaction
        assert SEEN not in info
        with app.db.engine.begin() as plain:
            assert repo.seen_in(plain) is None
            with UnitOfWork(plain) as work:
                assert work.cases.get(case_id) is not None and list(work.seen) == [case_id]
            assert repo.seen_in(plain) is None

    def test_a_case_carries_no_storage_attribute(self, app: App) -> None:
        """A case read (and written) holds only its dataclass fields: nothing smuggled onto the domain object."""
        case_id = open_case(app)
        app.transition(case_id, "accept", actor="fgj")
        fields = {f.name for f in dataclasses.fields(Case)}
        with app.db.write() as conn, UnitOfWork(conn) as work:
            case = work.cases.get(case_id)
            assert case is not None and set(vars(case)) == fields
            work.cases.commit(app.engine(conn).fire(app.workflow_of(conn, case), case, "report",
                                                    actor=app.actor(conn, "fgj"), note="已完成",
                                                    now=app.clock.now()), app.clock.now())
            assert set(vars(case)) == fields
