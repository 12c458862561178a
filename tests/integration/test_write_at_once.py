"""A write that must not wait (`Database.at_once`, `duban.web.auth.writing`): `duban serve`
runs a fired trigger on its event loop when SQLite's writer is free, and hands it to a worker
thread, untouched, when another write is under way in this process or another."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event

from duban.storage.database import Database, SharedWriteLost, WriterBusy
from duban.web.auth import writing
from duban.web.grouped_writes import GroupedWrites
from tests.conftest import add_unit, unit_count


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


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
        add_unit(db, "区发改局")
    assert unit_count(db) == 1


def test_a_write_at_once_gives_way_to_another_thread_s_write_and_does_nothing(db: Database,
                                                                                held: threading.Event) -> None:
    with pytest.raises(WriterBusy), db.at_once():
        add_unit(db, "区发改局")
    held.set()
    assert unit_count(db) == 0
    add_unit(db, "区住建局")  # the writer is as good as before
    assert unit_count(db) == 1


def test_a_write_at_once_gives_way_to_another_process_s_write(db: Database, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "duban.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer, as `duban scheduler run` would hold it
    try:
        with pytest.raises(WriterBusy), db.at_once():  # at once: not after BUSY_SECONDS
            add_unit(db, "区发改局")
    finally:
        other.execute("ROLLBACK")
        other.close()
    add_unit(db, "区住建局")  # and writes wait their turn again afterwards
    assert unit_count(db) == 1


def test_only_the_first_write_of_the_block_is_at_once(db: Database) -> None:
    with db.at_once():
        add_unit(db, "区发改局")
        add_unit(db, "区住建局")  # a second write waits as usual (nothing to give way to here)
    assert unit_count(db) == 2


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
        add_unit(db, name)
        return name

    async def fire(name: str) -> tuple[str, int]:
        return await writing(web, step, name), threading.get_ident()

    done, loop_thread = asyncio.run(fire("区发改局"))
    assert done == "区发改局"
    assert len(threads) == 1 and threads[0] != loop_thread  # nothing tried on the loop: done in a worker
    assert unit_count(db) == 1  # once, not twice

    threads.clear()
    done, loop_thread = asyncio.run(fire("区住建局"))
    assert threads == [loop_thread]  # the writer free: on the loop, no hand-off
    assert unit_count(db) == 2


def _together(web: Any, steps: list[Any]) -> list[Any]:
    """The steps sent to `writing` at the same moment, as many requests arriving together;
    each one's result or its error."""
    async def all_of() -> list[Any]:
        return await asyncio.gather(*(writing(web, s) for s in steps), return_exceptions=True)

    return asyncio.run(all_of())


def test_steps_that_arrive_together_share_one_commit(db: Database) -> None:
    commits = _commits(db)
    names = [f"单位{k}" for k in range(8)]
    done = _together(_web(db), [lambda n=n: (add_unit(db, n), n)[1] for n in names])
    assert done == names  # each request its own answer
    assert len(commits) == 1  # one commit, one fsync, for the eight
    assert unit_count(db) == 8


def test_a_step_that_fails_in_a_group_undoes_only_itself(db: Database) -> None:
    def fails() -> None:
        add_unit(db, "区住建局")
        raise ValueError("第二步不允许")

    def sees_the_first() -> int:  # a read in the group sees what the group's earlier steps did
        return unit_count(db)

    done = _together(_web(db), [lambda: add_unit(db, "区发改局"), fails, sees_the_first,
                                lambda: add_unit(db, "区住建局")])  # the failed step's unit, by a later step
    assert done[0] is None and isinstance(done[1], ValueError) and done[2] == 1 and done[3] is None
    assert unit_count(db) == 2


def test_a_group_whose_commit_fails_does_none_of_its_steps(db: Database) -> None:
    def refuse(conn: Any) -> None:
        raise RuntimeError("磁盘已满")  # as a commit failing at the disk

    event.listen(db.engine, "commit", refuse)
    done = _together(_web(db), [lambda: add_unit(db, "区发改局"), lambda: add_unit(db, "区住建局")])
    event.remove(db.engine, "commit", refuse)
    assert all(isinstance(d, RuntimeError) for d in done)  # every request told: none answered "done"
    assert unit_count(db) == 0
    add_unit(db, "区教育局")  # and the writer is as good as before
    assert unit_count(db) == 1


def test_a_group_whose_transaction_sqlite_ended_stops_there(db: Database) -> None:
    def ends_it() -> None:  # as SQLite does by itself on a full disk or an I/O error
        with db.write() as conn:
            conn.exec_driver_sql("ROLLBACK")
            raise OSError("I/O 错误")

    done = _together(_web(db), [lambda: add_unit(db, "区发改局"), ends_it, lambda: add_unit(db, "区住建局")])
    assert all(isinstance(d, SharedWriteLost) for d in done)  # the first's work is gone: it is told so
    assert unit_count(db) == 0  # and the third was not written statement by statement outside a transaction
    add_unit(db, "区教育局")
    assert unit_count(db) == 1
