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
    from duban.service.app import App

F = TypeVar("F", bound=Callable[..., Any])


class Settings:
    """The global options, and the App built from them on first use."""

    def __init__(self, db: str, now: str | None, tz: str, actor: str | None, as_json: bool) -> None:
        self.db, self.now, self.tz_name, self.actor, self.json = db, now, tz, actor, as_json
        self._app: App | None = None

    @property
    def tz(self) -> Any:
        from duban.bootstrap import office_zone

        return office_zone(self.tz_name)

    @property
    def app(self) -> App:
        if self._app is None:
            from duban.bootstrap import app_from_settings
            from duban.service.directory import os_user

            # SPEC §12: whoever can open the database is its operator; every event a command
            # writes says it came from the CLI and which operating-system user ran it
            self._app = app_from_settings(self.db, self.now, self.tz_name, origin={"via": "cli", "os_user": os_user()})
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
    from duban.present.output import emit_json

    if wants_json(as_json):
        emit_json(value)
    else:
        click.echo(human())


class WorkflowArgument(click.Command):
    """A command whose WORKFLOW argument names a workflow: its help lists them, with their
    labels (read from the catalog only when the help is shown)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from duban.errors import DubanError

        try:
            from duban.bootstrap import workflow_catalog

            catalog = workflow_catalog()
            rows = [(name, f"{catalog.latest(name).spec.label}") for name in catalog.names()]
        except DubanError as exc:  # a bad workflow file must not hide the help
            rows = [("?", f"the workflows could not be read: {exc}")]
        with formatter.section("WORKFLOW (流程)"):
            formatter.write_dl(rows)
        super().format_epilog(ctx, formatter)


# -- bounded input (SPEC §16 "Bad input is bounded") -----------------------------------
# A row id as PostgreSQL's INTEGER column holds it (SQLite's is wider): a larger number can
# name no case, and the driver would raise on it instead of answering "not found".
ROW_ID = click.IntRange(min=1, max=2**31 - 1)
ENV_OPTIONS = ("DUBAN_DB", "DUBAN_NOW", "DUBAN_TZ", "DUBAN_ACTOR")


class Seconds(click.FloatRange):
    """A positive, finite number of seconds, at most a year (nan and inf pass FloatRange)."""

    name = "seconds"

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True, max=365 * 86400)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a number of seconds (give e.g. 30 or 0.5)", param, ctx)
        return number


def bad_argument(args: list[str]) -> str | None:
    """Why the command line (or a DUBAN_* variable) cannot be used, or None.

    Arguments the terminal sent as bytes that are not UTF-8 reach Python as lone surrogates
    (os.fsdecode), which no database can store; a NUL byte is stored by SQLite and refused
    by PostgreSQL. Both are refused here, before anything runs, on every database alike."""
    import os

    named = [(f"the value of {args[i - 1]}" if i and args[i - 1].startswith("--") else f"argument {i + 1}", a)
             for i, a in enumerate(args)]
    named += [(name, os.environ[name]) for name in ENV_OPTIONS if name in os.environ]
    for where, text in named:
        if "\x00" in text:
            return f"{where} contains a NUL byte (\\0), which no text may hold（参数中含有 NUL 字符）"
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (f"{where} is not valid UTF-8 (at character {exc.start + 1}); set the terminal to UTF-8 "
                    "and type it again（参数不是有效的 UTF-8 文本）")
    return None
