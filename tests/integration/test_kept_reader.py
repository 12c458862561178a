"""SQLite's main thread keeps one read connection between reads (`Database._kept_reader`):
what a read sees stays right through nesting, errors, other threads' writes and forks."""

from __future__ import annotations

import os
import threading

import pytest

from duban.storage.database import Database
from tests.conftest import add_unit, unit_count


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


def _driver(db: Database) -> object:
    with db.read() as conn:
        return conn.connection.dbapi_connection


def test_the_main_thread_reads_on_one_kept_connection_that_sees_every_commit(db: Database) -> None:
    first = _driver(db)
    assert _driver(db) is first  # kept, not taken from the pool and given back
    add_unit(db, "区发改局")
    worker = threading.Thread(target=add_unit, args=(db, "区住建局"))
    worker.start()
    worker.join()
    assert unit_count(db) == 2  # each read is a transaction of its own: no stale snapshot
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
    add_unit(db, "区发改局")
    assert unit_count(db) == 1
    assert _driver(db) is not kept  # started afresh


def test_a_forked_child_does_not_use_the_parent_s_connection(db: Database) -> None:
    parent = _driver(db)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own connection, the right answer
        try:
            add_unit(db, "区发改局")
            ok = unit_count(db) == 1 and _driver(db) is not parent
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert unit_count(db) == 1 and _driver(db) is parent
