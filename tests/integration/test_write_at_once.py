"""A write that must not wait (`Database.at_once`, `duban.web.auth.writing`): `duban serve`
runs a fired trigger on its event loop when SQLite's writer is free, and hands it to a worker
thread, untouched, when another write is under way in this process or another."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event, func, select

from duban.storage.database import Database, SharedWriteLost, WriterBusy
from duban.storage.tables import UNITS
from duban.web.auth import writing
from duban.web.grouped_writes import GroupedWrites

START = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    found = Database(f"sqlite:///{tmp_path / 'duban.db'}")
    found.migrate()
    yield found
    found.dispose()


def _add_unit(db: Database, name: str) -> None:
    with db.write() as conn:
        conn.execute(UNITS.insert().values(name=name, created_at=START))


def _units(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(UNITS)).scalar_one())


@pytest.fixture
def held(db: Database) -> Iterator[threading.Event]:
    """Another thread of this process in a write transaction until the event is set."""
    began, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.write():
            began.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert began.wait(30)
    yield release
    release.set()
    thread.join(30)


def test_a_write_at_once_runs_when_the_writer_is_free(db: Database) -> None:
    with db.at_once():
        _add_unit(db, "区发改局")
    assert _units(db) == 1


def test_a_write_at_once_gives_way_to_another_thread_s_write_and_does_nothing(db: Database,
                                                                                held: threading.Event) -> None:
    with pytest.raises(WriterBusy), db.at_once():
        _add_unit(db, "区发改局")
    held.set()
    assert _units(db) == 0
    _add_unit(db, "区住建局")  # the writer is as good as before
    assert _units(db) == 1


def test_a_write_at_once_gives_way_to_another_process_s_write(db: Database, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "duban.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer, as `duban scheduler run` would hold it
    try:
        with pytest.raises(WriterBusy), db.at_once():  # at once: not after BUSY_SECONDS
            _add_unit(db, "区发改局")
    finally:
        other.execute("ROLLBACK")
        other.close()
    _add_unit(db, "区住建局")  # and writes wait their turn again afterwards
    assert _units(db) == 1


def test_only_the_first_write_of_the_block_is_at_once(db: Database) -> None:
    with db.at_once():
        _add_unit(db, "区发改局")
        _add_unit(db, "区住建局")  # a second write waits as usual (nothing to give way to here)
    assert _units(db) == 2


def _web(db: Database) -> Any:
    return SimpleNamespace(app=SimpleNamespace(db=db), writes=GroupedWrites(db))


def _commits(db: Database) -> list[int]:
    """A list that grows by one at each commit of the database's transactions."""
    seen: list[int] = []
    event.listen(db.engine, "commit", lambda conn: seen.append(1))
    return seen


def test_serve_s_write_runs_on_the_event_loop_when_it_can_else_in_a_worker(db: Database,
                                                                           held: threading.Event) -> None:
    web = _web(db)
    threads: list[int] = []

    def step(name: str) -> str:
        threads.append(threading.get_ident())
        held.set()  # handed to a worker: let the other write finish
        _add_unit(db, name)
        return name

    async def fire(name: str) -> tuple[str, int]:
        return await writing(web, step, name), threading.get_ident()

    done, loop_thread = asyncio.run(fire("区发改局"))
    assert done == "区发改局"
    assert len(threads) == 1 and threads[0] != loop_thread  # nothing tried on the loop: done in a worker
    assert _units(db) == 1  # once, not twice

    threads.clear()
    done, loop_thread = asyncio.run(fire("区住建局"))
    assert threads == [loop_thread]  # the writer free: on the loop, no hand-off
    assert _units(db) == 2


def _together(web: Any, steps: list[Any]) -> list[Any]:
    """The steps sent to `writing` at the same moment, as many requests arriving together;
    each one's result or its error."""
    async def all_of() -> list[Any]:
        return await asyncio.gather(*(writing(web, s) for s in steps), return_exceptions=True)

    return asyncio.run(all_of())


def test_steps_that_arrive_together_share_one_commit(db: Database) -> None:
    commits = _commits(db)
    names = [f"单位{k}" for k in range(8)]
    done = _together(_web(db), [lambda n=n: (_add_unit(db, n), n)[1] for n in names])
    assert done == names  # each request its own answer
    assert len(commits) == 1  # one commit, one fsync, for the eight
    assert _units(db) == 8


def test_a_step_that_fails_in_a_group_undoes_only_itself(db: Database) -> None:
    def fails() -> None:
        _add_unit(db, "区住建局")
        raise ValueError("第二步不允许")

    def sees_the_first() -> int:  # a read in the group sees what the group's earlier steps did
        return _units(db)

    done = _together(_web(db), [lambda: _add_unit(db, "区发改局"), fails, sees_the_first,
                                lambda: _add_unit(db, "区住建局")])  # the failed step's unit, by a later step
    assert done[0] is None and isinstance(done[1], ValueError) and done[2] == 1 and done[3] is None
    assert _units(db) == 2


def test_a_group_whose_commit_fails_does_none_of_its_steps(db: Database) -> None:
    def refuse(conn: Any) -> None:
        raise RuntimeError("磁盘已满")  # as a commit failing at the disk

    event.listen(db.engine, "commit", refuse)
    done = _together(_web(db), [lambda: _add_unit(db, "区发改局"), lambda: _add_unit(db, "区住建局")])
    event.remove(db.engine, "commit", refuse)
    assert all(isinstance(d, RuntimeError) for d in done)  # every request told: none answered "done"
    assert _units(db) == 0
    _add_unit(db, "区教育局")  # and the writer is as good as before
    assert _units(db) == 1


def test_a_group_whose_transaction_sqlite_ended_stops_there(db: Database) -> None:
    def ends_it() -> None:  # as SQLite does by itself on a full disk or an I/O error
        with db.write() as conn:
            conn.exec_driver_sql("ROLLBACK")
            raise OSError("I/O 错误")

    done = _together(_web(db), [lambda: _add_unit(db, "区发改局"), ends_it, lambda: _add_unit(db, "区住建局")])
    assert all(isinstance(d, SharedWriteLost) for d in done)  # the first's work is gone: it is told so
    assert _units(db) == 0  # and the third was not written statement by statement outside a transaction
    _add_unit(db, "区教育局")
    assert _units(db) == 1
