"""Group commit for `duban serve` on SQLite: the steps that arrive together share one commit.

SQLite writes one transaction at a time, and each commit is an fsync (`synchronous=FULL`):
with many people firing at once, a step's commit was a quarter of its time on the server.
Steps that reach the server in the same turn of the event loop are run one after another in
one transaction, each in a savepoint of its own (`Database.shared_write`): a step that
fails undoes only itself and answers its own error; the rest are committed together, and
no answer is sent before the commit that holds its step has returned — so a step that was
answered is on disk, and a step whose commit failed was answered with that failure, none
of it done.

The group runs on the event loop, as a single step did (`duban.web.auth.writing`): when
another write holds the writer (the in-process scheduler, another process), nothing of the
group is done there and each of its steps goes to a worker thread, to wait its turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from duban.storage.database import Database, SharedWriteLost, WriterBusy

_TO_A_WORKER = object()  # a group's answer to each of its steps when the writer was taken

Pending = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]


class GroupedWrites:
    """The steps waiting for the next group of one SQLite database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[Pending] = []

    async def run(self, write: Callable[..., Any], *args: Any) -> Any:
        """`write(*args)` in the next group; its result or its error once the group is committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._pending.append((write, args, done))
        if len(self._pending) == 1:
            # run after the requests already read in this turn of the loop have reached here
            loop.call_soon(self._flush)
        found = await done
        if found is _TO_A_WORKER:
            return await run_in_threadpool(write, *args)
        return found

    def _flush(self) -> None:
        group, self._pending = self._pending, []
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.db.shared_write():
                for write, args, _ in group:
                    try:
                        with self.db.write():  # the step's savepoint: whatever it wrote, undone if it fails
                            value = write(*args)
                    except SharedWriteLost:
                        raise
                    except Exception as exc:  # its savepoint is rolled back; the others go on
                        outcomes.append((False, exc))
                    else:
                        outcomes.append((True, value))
        except WriterBusy:  # nothing was done: each waits for the writer in a worker thread
            outcomes = [(True, _TO_A_WORKER)] * len(group)
        except BaseException as exc:  # the commit failed (or never came): none of the group is done
            for _, _, done in group:
                _answer(done, False, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (ok, value), (_, _, done) in zip(outcomes, group, strict=True):
            _answer(done, ok, value)


def _answer(done: asyncio.Future[Any], ok: bool, value: Any) -> None:
    """A step's result or error, unless its request went away meanwhile (a committed step
    stands all the same, as any committed step)."""
    if done.done():
        return
    if ok:
        done.set_result(value)
    else:
        done.set_exception(value)
