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
from sqlalchemy import func, select

from duban.storage.database import Database, WriterBusy
from duban.storage.tables import UNITS
from duban.web.auth import writing

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


def test_serve_s_write_runs_on_the_event_loop_when_it_can_else_in_a_worker(db: Database,
                                                                           held: threading.Event) -> None:
    web: Any = SimpleNamespace(app=SimpleNamespace(db=db))
    threads: list[int] = []

    def step(name: str) -> str:
        threads.append(threading.get_ident())
        if len(threads) == 2:  # handed to a worker: let the other write finish
            held.set()
        _add_unit(db, name)
        return name

    async def fire(name: str) -> tuple[str, int]:
        return await writing(web, step, name), threading.get_ident()

    done, loop_thread = asyncio.run(fire("区发改局"))
    assert done == "区发改局"
    assert threads[0] == loop_thread != threads[1]  # tried on the loop, done in a worker
    assert _units(db) == 1  # once, not twice

    threads.clear()
    done, loop_thread = asyncio.run(fire("区住建局"))
    assert threads == [loop_thread]  # the writer free: on the loop, no hand-off
    assert _units(db) == 2
