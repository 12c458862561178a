"""Opening the database: engine, SQLite settings, transactions, migrations.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL``: a committed
step survives a power loss, which an accountability record needs (LIBRARIES.md §3.2
measured the cost). Writers take the write lock up front with ``BEGIN IMMEDIATE`` so two
writers never deadlock upgrading a read lock. PostgreSQL is the scale-out store.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from threading import Lock, current_thread, main_thread
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from duban.errors import StorageError, UsageError
from duban.storage import schema
from duban.storage.sql import execute, in_transaction
from duban.storage.sqlite_setup import BUSY_MS, NO_WAIT, READ_ONLY, sqlite_begin, sqlite_compiler, sqlite_pragmas

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_SECONDS = BUSY_MS // 1000  # how long a writer waits for another in this process before giving up
ORIGIN = "duban_origin"  # the key of `Database.origin` in a write connection's info (audit_log.Chain reads it)
# The key of a write transaction's identity map in its connection's info (`duban.storage.uow`):
# every write transaction has one, from its start to its end, so whatever reads and writes
# cases in it (a person's step, a scheduler chunk, a unit rename) writes only changed columns.
SEEN = "duban_seen_cases"
# Set by `Database.at_once` for the block's next write transaction (its first only: once that
# one has begun, any later write in the block waits its turn as usual).
_AT_ONCE: ContextVar[bool] = ContextVar("duban_write_at_once", default=False)
# The connection of the write transaction `Database.shared_write` opened, while its block runs:
# the block's writes are savepoints of it, and its reads see what they wrote.
_SHARED: ContextVar[Connection | None] = ContextVar("duban_shared_write", default=None)
_SAVEPOINTS = itertools.count(1)


class WriterBusy(Exception):
    """A write asked for `at_once` found another write under way, and waited for none: nothing
    was done, so the caller may run it again where waiting is fine."""


class SharedWriteLost(StorageError):
    """Inside `Database.shared_write`, SQLite ended the shared transaction itself: none of the
    block's writes is done, and none may be tried in it any more."""


@contextmanager
def _identity_map(conn: Connection) -> Iterator[None]:
    """A fresh identity map for the transaction, dropped when it ends (committed or not)."""
    conn.info[SEEN] = {}
    try:
        yield
    finally:
        conn.info.pop(SEEN, None)


class Database:
    """One database, SQLite or PostgreSQL, with duban's connection settings."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.is_postgres = url.startswith("postgresql")
        if not (self.is_sqlite or self.is_postgres):
            scheme = url.split("://", 1)[0] if "://" in url else url
            raise UsageError(f"--db: '{scheme[:40]}' databases are not supported; use sqlite:///FILE "
                             "(or a plain file path) or postgresql+psycopg://USER@HOST/DB")
        try:
            # SQLite: a connection is a file handle, cheap to keep. SQLAlchemy's default pool keeps 5
            # and blocks past 15, while `duban serve` reads from up to 40 worker threads (and the
            # kept writer holds one): connections were opened, set up and closed per request.
            self.engine: Engine = (create_engine(url, pool_size=48, max_overflow=-1) if self.is_sqlite
                                   else create_engine(url, pool_pre_ping=True))
        except (ArgumentError, ValueError) as exc:
            raise UsageError(f"--db: not a database URL this duban can open ({str(exc)[:200]}); use "
                             "sqlite:///FILE or postgresql+psycopg://USER@HOST/DB") from None
        except ImportError as exc:
            raise UsageError(f"--db: the driver for this URL is not installed ({exc.name}); for PostgreSQL "
                             "use postgresql+psycopg://USER@HOST/DB") from None
        if self.is_sqlite:
            self._check_sqlite_path(url)
            event.listen(self.engine, "connect", sqlite_pragmas)
            event.listen(self.engine, "begin", sqlite_begin)
            self.engine.dialect.statement_compiler = sqlite_compiler()
        # The schema revision is checked once, at the first read or write (`_usable`).
        self._checked = False
        self._writer: Connection | None = None  # SQLite: the write connection, kept (`_sqlite_writer`)
        self._write_lock = Lock()
        self._reader: tuple[Connection | None, int] = (None, 0)  # SQLite: the main thread's, and its pid
        self._waiting = 0  # writers waiting for `_write_lock` (counted under `_count_lock`)
        self._count_lock = Lock()
        # How the events written through this handle came (SPEC §12: the CLI sets
        # {"via": "cli", "os_user": …}); `audit_log.Chain` adds it to every event's data, so
        # no command can forget it. None: nothing added (Python callers, the tests' App).
        self.origin: dict[str, str] | None = None

    @staticmethod
    def _check_sqlite_path(url: str) -> None:
        path = url.split("///", 1)[1] if "///" in url else ""
        if not path or path == ":memory:":
            return
        folder = Path(path).resolve().parent
        if not folder.is_dir():
            raise StorageError(f"cannot open database {path}: folder {folder} does not exist")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back on any error.
        Inside `shared_write`: a savepoint of its transaction, released when the block ends
        (committed with the others), rolled back on any error (the others untouched)."""
        shared = _SHARED.get()
        if shared is not None:
            with self.translate(), self._savepoint(shared), _identity_map(shared):
                yield shared
            return
        if not self.is_sqlite:
            with self.translate(), self.engine.begin() as conn:
                self._usable(conn)
                conn.info[ORIGIN] = self.origin  # pooled connections keep info: set at every write
                with _identity_map(conn):
                    yield conn
            return
        with self.translate():
            self._require_file()
        at_once = _AT_ONCE.get()
        if at_once:
            _AT_ONCE.set(False)
        with self.translate(), self._sqlite_writer(at_once) as conn, self._begin(conn, at_once):
            self._usable(conn)
            conn.info[ORIGIN] = self.origin
            with _identity_map(conn):
                yield conn

    @contextmanager
    def at_once(self) -> Iterator[None]:
        """The block's first write transaction begins at once or not at all: on SQLite, when
        this process's writer or another process's write lock is taken, it raises
        `WriterBusy` before doing anything, instead of waiting (up to BUSY_SECONDS) for its
        turn. For a caller that must not block while it waits: `duban serve` runs a step on
        its event loop when it can (`duban.web.auth.writing`). PostgreSQL writes never wait here."""
        token = _AT_ONCE.set(self.is_sqlite)
        try:
            yield
        finally:
            _AT_ONCE.reset(token)

    @contextmanager
    def shared_write(self) -> Iterator[None]:
        """One write transaction, begun at once (else `WriterBusy`, nothing done), that every
        write of the block shares: each is a savepoint of it, so a write that fails undoes
        only itself; all are committed together when the block ends — one commit, one fsync
        for many steps (group commit: `duban.web.grouped_writes`). Reads in the block see
        what its writes did. A failing commit undoes them all. SQLite only: there, writes take
        turns anyway; PostgreSQL's run side by side, each in its own transaction."""
        if not self.is_sqlite:
            raise RuntimeError("shared_write is for SQLite")
        with self.at_once(), self.write() as conn:
            token = _SHARED.set(conn)
            try:
                yield
            finally:
                _SHARED.reset(token)

    @staticmethod
    @contextmanager
    def _savepoint(conn: Connection) -> Iterator[None]:
        """A savepoint of the shared transaction, written to the driver directly (SQLAlchemy's
        `begin_nested` compiles its statements anew each time: a tenth of a step)."""
        name = f"duban_{next(_SAVEPOINTS)}"
        execute(conn, f'SAVEPOINT "{name}"')
        try:
            yield
        except BaseException as exc:
            # SQLite ends the whole transaction by itself on some errors (a full disk, an I/O
            # error): what the block's other writes did is gone, and what came next would be
            # committed statement by statement. Nothing of the block may go on.
            if isinstance(exc, SharedWriteLost):  # an inner savepoint saw it first
                raise
            if not in_transaction(conn):
                raise SharedWriteLost(f"the shared write transaction was lost: {exc}") from exc
            execute(conn, f'ROLLBACK TO "{name}"')
            execute(conn, f'RELEASE "{name}"')
            raise
        execute(conn, f'RELEASE "{name}"')

    @staticmethod
    def _begin(conn: Connection, at_once: bool) -> Any:
        """`conn.begin()`; with `at_once`, SQLite's "database is locked" is `WriterBusy`."""
        if not at_once:
            return conn.begin()
        conn.info[NO_WAIT] = True
        try:
            return conn.begin()
        except OperationalError as exc:
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                raise WriterBusy from None
            raise
        finally:
            conn.info[NO_WAIT] = False

    @contextmanager
    def _sqlite_writer(self, at_once: bool = False) -> Iterator[Connection]:
        """The SQLite write connection, kept open between transactions and used by one
        thread at a time.

        SQLite lets one transaction write at a time anyway (``BEGIN IMMEDIATE``), so this
        process's writers queue here for the one connection instead of at SQLite's busy
        handler; other processes still queue at SQLite's. Checking a connection out of the
        pool and back in for every step cost more Python time than SQLite takes to run the
        step's statements (README "Performance"). A SQLite file connection does not go stale;
        PostgreSQL's can (a server restart), so those keep the pool and its pre-ping."""
        if at_once:
            # a writer already waiting goes first: else one that never waits would take the lock
            # each time it is let go (a Lock is not fair) and the waiting one would starve
            if self._waiting or not self._write_lock.acquire(blocking=False):
                raise WriterBusy
        else:
            with self._count_lock:
                self._waiting += 1
            try:
                got = self._write_lock.acquire(timeout=BUSY_SECONDS)
            finally:
                with self._count_lock:
                    self._waiting -= 1
            if not got:
                raise StorageError(f"database {self.display_url} is busy: another write in this process has held it "
                                   f"for {BUSY_SECONDS} s; try again")
        try:
            conn = self._writer
            if conn is None or conn.closed or conn.invalidated:
                conn = self._writer = self.engine.connect()
            try:
                yield conn
            except WriterBusy:
                raise  # nothing began: the connection is as good as before
            except BaseException:
                self._writer = None  # whatever went wrong, the next write starts on a fresh connection
                conn.close()
                raise
        finally:
            self._write_lock.release()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction that does not take the write lock (inside `shared_write`: its
        transaction, which sees what the block's writes did)."""
        shared = _SHARED.get()
        if shared is not None:
            yield shared
            return
        with self.translate():
            self._require_file()
        with self.translate():  # opening it runs the pragmas: a file that is no database fails there
            kept = self._kept_reader() if self.is_sqlite else None
        if kept is None:
            with self.translate(), self.engine.connect().execution_options(**{READ_ONLY: True}) as conn, conn.begin():
                self._usable(conn)
                yield conn
            return
        try:
            with self.translate(), kept.begin():
                self._usable(kept)
                yield kept
        except BaseException:
            self._reader = (None, 0)  # whatever went wrong, the next read starts afresh
            kept.close()
            raise

    def _kept_reader(self) -> Connection | None:
        """SQLite, the main thread: its read connection, kept open between reads (checking one
        out of the pool and back in cost 55 µs a read against 9 µs, and a request reads two or
        three times: `duban serve` runs its reads on the event loop, in the main thread).
        None in another thread (worker threads come and go: theirs would be left open), inside
        another read of the main thread (that one holds it) and in a forked child (a SQLite
        connection must not cross a fork): those take one from the pool."""
        if current_thread() is not main_thread():
            return None
        conn, pid = self._reader
        if conn is not None and (pid != os.getpid() or conn.in_transaction()):
            return None
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect().execution_options(**{READ_ONLY: True})
            self._reader = (conn, os.getpid())
        return conn

    def _require_file(self) -> None:
        """A SQLite database that is not there is not created by a command that only uses it
        (SPEC §16 "Reads change nothing"); only `migrate` (``duban init``) creates it."""
        if self._checked or not self.is_sqlite:
            return
        path = self.engine.url.database
        if path and path != ":memory:" and not os.path.exists(path):
            raise StorageError(f"database {path} does not exist: it {schema.NOT_INITIALISED}")

    def _usable(self, conn: Connection) -> None:
        """Once per handle: the schema is this duban's (`duban.storage.schema.check`)."""
        if not self._checked:
            schema.check(conn, self.display_url)
            self._checked = True

    @contextmanager
    def translate(self) -> Iterator[None]:
        """Turn driver errors into StorageError with a message a user can act on."""
        try:
            yield
        except OperationalError as exc:
            raise StorageError(self._explain(exc)) from exc
        except DBAPIError as exc:
            if "no such table" in str(exc) or "does not exist" in str(exc.orig):
                raise StorageError(f"database {self.display_url} {schema.NOT_INITIALISED}") from exc
            if "file is not a database" in str(exc.orig):
                raise UsageError(f"--db {self.display_url}: the file is not a SQLite database "
                                 "(give a duban database, or a new file name for duban init)") from exc
            raise

    def _explain(self, exc: OperationalError) -> str:
        text = str(exc.orig)
        if "no such table" in text or "UndefinedTable" in type(exc.orig).__name__:
            return f"database {self.display_url} {schema.NOT_INITIALISED}"
        if "readonly" in text or "unable to open" in text:
            return f"cannot write database {self.display_url}: {text} (check the path and its permissions)"
        return f"database {self.display_url}: {text}"

    @property
    def display_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.translate(), self.engine.begin() as conn:
            if inspect(conn).has_table("alembic_version"):  # a newer duban's database: never touched
                schema.refuse_newer(schema.stored(conn), self.display_url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        self._checked = False  # upgraded: the next read checks again (and finds the head)

    def table_names(self) -> list[str]:
        with self.translate(), self.engine.connect() as conn:
            return inspect(conn).get_table_names()

    def dispose(self) -> None:
        """Close every connection: the pool's and the kept write connection (once the write
        in progress, if any, has ended; one that outlasts the busy limit keeps its connection)."""
        if self._write_lock.acquire(timeout=BUSY_SECONDS):
            try:
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
            finally:
                self._write_lock.release()
        reader, pid = self._reader
        if reader is not None and pid == os.getpid() and not reader.in_transaction():
            reader.close()
            self._reader = (None, 0)
        self.engine.dispose()
