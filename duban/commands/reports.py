"""Review commands: `duban report units|bulletin|accountability` (SPEC §7, §10).

Only click is imported at module top (start-up time); everything else inside the
commands. Every report prints as a table, or ``--json``, ``--format csv`` (stdout, or
``--out FILE``) or ``--format xlsx --out FILE``; files are written under a temporary name
and renamed, so a failed command leaves no partial file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from duban.commands.support import ROW_ID, out, settings, wants_json

if TYPE_CHECKING:
    from duban.reports import Report

REPORT_FORMATS = ("table", "json", "csv", "xlsx")


# -- reports ------------------------------------------------------------------------------
def _report_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--json", "as_json", is_flag=True, help="Print one JSON document and nothing else.")(func)
    func = click.option("--out", "path", type=click.Path(dir_okay=False),
                        help="Write the report to FILE (csv or xlsx).")(func)
    return click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="table", show_default=True,
                        help="table, json, csv (stdout or --out) or xlsx (needs --out).")(func)


def _check_output_options(fmt: str, path: str | None, as_json: bool) -> str:
    """The effective format; UsageError (exit 2) for a combination that cannot work."""
    from duban.errors import UsageError
    from duban.exports.events import check_output

    if fmt == "xlsx" and not path:
        raise UsageError("--format xlsx writes a file: give --out FILE.xlsx")
    if path and fmt in ("table", "json"):
        raise UsageError("--out is for --format csv or xlsx (table and JSON print to stdout)")
    if wants_json(as_json) and fmt == "csv" and not path:
        raise UsageError("--json prints JSON and --format csv prints CSV: choose one (or write the CSV with --out)")
    if path:
        check_output(path)
    return "json" if fmt == "table" and wants_json(as_json) else fmt


def _emit(report: Report, fmt: str, path: str | None, as_json: bool) -> None:
    from pathlib import Path

    from duban.present.output import emit_json
    from duban.present.render import render_csv, render_table, report_json, write_report

    tz = settings().tz
    report, footer = _signed(report)
    if path:
        write_report(report, fmt, Path(path), tz)
        rows = {s.key: len(s.rows) for s in report.sections}
        out({"file": path, "format": fmt, "report": report.name, "rows": rows}, as_json,
            lambda: f"wrote {report.title} to {path}")
    elif fmt == "json":
        emit_json(report_json(report, tz))
    elif fmt == "csv":
        click.echo(render_csv(report, tz), nl=False)
    else:
        click.echo(render_table(report, tz) + "\n\n" + footer)


def _signed(report: Report) -> tuple[Report, str]:
    """The report with the latest signed checkpoint of the audit log in its JSON (SPEC §15),
    and the line a printed report ends with, so a reader can tie it to what the inspectors hold."""
    from dataclasses import replace

    from duban.service.checkpoints import stored_summary

    cp = stored_summary(settings().app)
    short = None if cp is None else {k: cp[k] for k in ("id", "size", "root", "fingerprint", "signed_at")}
    line = ("审计检查点：尚未签署（duban audit checkpoint --key office.key）" if cp is None else
            f"审计检查点 #{cp['id']}：{cp['size']} 条事件，默克尔根 {cp['root']}，{cp['signed_at']} 签署，"
            f"密钥指纹 {cp['fingerprint']}")
    return replace(report, meta={**report.meta, "checkpoint": short}), line


@click.group()
def report() -> None:
    """Reports for accountability reviews: units, bulletin, accountability (SPEC §10)."""


@report.command("units")
@click.option("--since", help="Start of the period (ISO date or datetime, office zone).")
@click.option("--until", help="End of the period; a bare date includes that whole day.")
@click.option("--settings", "settings_file", envvar="DUBAN_SETTINGS", type=click.Path(dir_okay=False),
              help="Office settings YAML with grade bands (env DUBAN_SETTINGS).")
@_report_options
def report_units(since: str | None, until: str | None, settings_file: str | None, fmt: str, path: str | None,
                 as_json: bool) -> None:
    """Per lead unit: on-time and sign-for rates, escalations, measures, grade, rank; bottom three flagged."""
    from duban.reports.period import parse_period
    from duban.service.reviews import Reviews

    s = settings()
    fmt = _check_output_options(fmt, path, as_json)
    rep = Reviews(s.app).units(parse_period(since, until, s.tz), settings_file)
    _emit(rep, fmt, path, as_json)


@report.command("bulletin")
@click.option("--period", "kind", type=click.Choice(["week", "month", "quarter"]), required=True,
              help="The week (Monday–Sunday), month or quarter containing --date.")
@click.option("--date", "day", help="A day of the period (ISO date; default today in the office zone).")
@_report_options
def report_bulletin(kind: str, day: str | None, fmt: str, path: str | None, as_json: bool) -> None:
    """The 通报: new, closed, red and yellow cards, escalations and decisions, by unit."""
    from duban.reports.period import parse_day
    from duban.service.reviews import Reviews

    fmt = _check_output_options(fmt, path, as_json)
    rep = Reviews(settings().app).bulletin(kind, parse_day(day) if day else None)
    _emit(rep, fmt, path, as_json)


@report.command("accountability")
@click.option("--case", "case_id", type=ROW_ID, help="One case.")
@click.option("--unit", help="The cases this unit leads.")
@click.option("--proof", is_flag=True,
              help="With --case: also write the case's proof bundle (audit prove) beside the report, "
                   "as FILE.proof.json (or case-ID.proof.json when printing).")
@_report_options
def report_accountability(case_id: int | None, unit: str | None, proof: bool, fmt: str, path: str | None,
                          as_json: bool) -> None:
    """The 问责专报: per case its timeline, missed deadlines, escalations, notices and measure."""
    from duban.service.reviews import Reviews

    fmt = _check_output_options(fmt, path, as_json)
    if proof and case_id is None:
        from duban.errors import UsageError

        raise UsageError("--proof proves one case's events: give --case ID")
    rep = Reviews(settings().app).accountability(case_id=case_id, unit=unit)
    if proof and case_id is not None:
        from dataclasses import replace

        from duban.service.proofs import prove, write

        bundle_path = f"{path}.proof.json" if path else f"case-{case_id}.proof.json"
        write(prove(settings().app, case_id), bundle_path)
        rep = replace(rep, meta={**rep.meta, "proof_file": bundle_path})
        if not wants_json(as_json):
            click.echo(f"证明包已写出：{bundle_path}（核验：duban audit verify --bundle {bundle_path} --pubkey office.pub）",
                       err=True)
    _emit(rep, fmt, path, as_json)
