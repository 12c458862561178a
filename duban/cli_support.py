"""What every `duban` command module shares: the global options and how to print.

The global options live on the root click context (`Settings`); command modules read
them from there with `settings()`, never by importing `duban.cli`, so `python -m
duban.cli` (which loads duban.cli a second time) still works. Only click is imported at
module level: `duban --help` must start fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from duban.app import App

F = TypeVar("F", bound=Callable[..., Any])


class Settings:
    """The global options, and the App built from them on first use."""

    def __init__(self, db: str, now: str | None, tz: str, actor: str | None, as_json: bool) -> None:
        self.db, self.now, self.tz_name, self.actor, self.json = db, now, tz, actor, as_json
        self._app: App | None = None

    @property
    def tz(self) -> Any:
        from duban.clock import zone

        return zone(self.tz_name)

    def clock(self) -> Any:
        from duban.clock import ManualClock, SystemClock, parse_instant

        if self.now:
            return ManualClock(parse_instant(self.now, self.tz, what="--now"))
        return SystemClock()

    @property
    def app(self) -> App:
        if self._app is None:
            from duban.app import App
            from duban.storage.database import Database

            self._app = App(Database(self.db), self.clock(), self.tz)
            # close the pool when the command ends: no connection left for the garbage collector
            click.get_current_context().call_on_close(self._app.db.dispose)
        return self._app


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document and nothing else.")(func)


def settings() -> Settings:
    """The global options (--db, --now, --tz, --actor, --json) the root command stored."""
    obj: Settings = click.get_current_context().find_root().obj
    return obj


def wants_json(as_json: bool) -> bool:
    return as_json or bool(settings().json)


def out(value: Any, as_json: bool, human: Callable[[], str]) -> None:
    """One JSON document with --json, else the human text."""
    from duban.output import emit_json

    if wants_json(as_json):
        emit_json(value)
    else:
        click.echo(human())
