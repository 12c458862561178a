"""SQLite's main thread keeps one read connection between reads (`Database._kept_reader`):
what a read sees stays right through nesting, errors, other threads' writes and forks."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from duban.storage.database import Database
from duban.storage.tables import UNITS

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


def _driver(db: Database) -> object:
    with db.read() as conn:
        return conn.connection.dbapi_connection


def test_the_main_thread_reads_on_one_kept_connection_that_sees_every_commit(db: Database) -> None:
    first = _driver(db)
    assert _driver(db) is first  # kept, not taken from the pool and given back
    _add_unit(db, "区发改局")
    worker = threading.Thread(target=_add_unit, args=(db, "区住建局"))
    worker.start()
    worker.join()
    assert _units(db) == 2  # each read is a transaction of its own: no stale snapshot
    assert _driver(db) is first


def test_a_read_inside_a_read_and_a_worker_thread_s_read_take_their_own(db: Database) -> None:
    kept = _driver(db)
    seen: list[object] = []
    with db.read() as outer:
        assert outer.connection.dbapi_connection is kept
        seen.append(_driver(db))  # nested: the kept one is in use
    worker = threading.Thread(target=lambda: seen.append(_driver(db)))
    worker.start()
    worker.join()
    assert kept not in seen


def test_a_read_that_fails_leaves_the_next_read_working(db: Database) -> None:
    kept = _driver(db)
    with pytest.raises(ZeroDivisionError), db.read():
        1 / 0  # noqa: B018
    _add_unit(db, "区发改局")
    assert _units(db) == 1
    assert _driver(db) is not kept  # started afresh


def test_a_forked_child_does_not_use_the_parent_s_connection(db: Database) -> None:
    parent = _driver(db)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own connection, the right answer
        try:
            _add_unit(db, "区发改局")
            ok = _units(db) == 1 and _driver(db) is not parent
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert _units(db) == 1 and _driver(db) is parent
