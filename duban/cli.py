"""The `duban` command line (SPEC §8): the root group, its global options, and the command
groups registered from `duban.commands` (one module each: cases, users, units, workflows,
notices, audit, calendar, reports, notify, scheduler, serve, access, demo).

Errors map to exit codes in exactly one place (`_Top.invoke`): 2 usage, 3 not found,
4 refused, 5 conflict, 6 integrity, 1 anything else; the message on stderr says what was
wrong and what would be allowed. The command modules import only click at module level;
heavy modules (SQLAlchemy, transitions, pydantic) are imported inside the commands so
`duban --help` starts fast.
"""

from __future__ import annotations

import os
from typing import Any

import click

from duban.commands.access import token
from duban.commands.audit import audit
from duban.commands.calendar import calendar
from duban.commands.cases import case
from duban.commands.demo import demo
from duban.commands.notices import notice
from duban.commands.notify import notify
from duban.commands.operator import init, tick
from duban.commands.reports import report
from duban.commands.scheduler import scheduler
from duban.commands.serve import serve
from duban.commands.support import Settings
from duban.commands.units import unit
from duban.commands.users import user
from duban.commands.workflows import workflow
from duban.errors import DubanError, UsageError


class _Top(click.Group):
    def main(self, args: Any = None, *rest: Any, **kw: Any) -> Any:
        import sys

        from duban.commands.support import bad_argument

        problem = bad_argument(list(sys.argv[1:] if args is None else args))
        if problem:  # before click parses anything: no text that cannot be stored gets further
            click.echo(f"error: {problem}", err=True)
            sys.exit(UsageError.exit_code)
        return super().main(args, *rest, **kw)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DubanError as exc:
            from duban.commands.flags import cli_message

            click.echo(f"error: {cli_message(exc)}", err=True)  # each field it names, by its option
            ctx.exit(exc.exit_code)


@click.group(cls=_Top, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="DUBAN_DB", default="sqlite:///duban.db", show_default=True, help="Database URL (env DUBAN_DB).")
@click.option("--now", envvar="DUBAN_NOW", help="Pin the clock to this ISO instant (env DUBAN_NOW).")
@click.option("--tz", envvar="DUBAN_TZ", default="Asia/Shanghai", show_default=True, help="The office's zone (env DUBAN_TZ).")
@click.option("--actor", envvar="DUBAN_ACTOR", help="Who acts: a user of the directory (env DUBAN_ACTOR).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document and nothing else.")
@click.version_option(package_name="duban")
@click.pass_context
def cli(ctx: click.Context, db: str, now: str | None, tz: str, actor: str | None, as_json: bool) -> None:
    """duban 督办 — durable supervision cases with working-day deadlines and an audit chain."""
    from duban.logconfig import configure

    configure(defer=True)  # structlog loads at the first logged line: `case show` logs none
    if "://" not in db:
        db = f"sqlite:///{db}"  # a plain path means a SQLite file
    ctx.obj = Settings(db, now, tz, actor, as_json)


# The command groups, each in its module under duban.commands (`duban --help` lists them by name).
for _command in (init, tick, user, unit, workflow, case, notice, audit, calendar, report, notify, scheduler, serve,
                 token, demo):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="duban", auto_envvar_prefix=None)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    main()

