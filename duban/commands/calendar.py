"""`duban calendar import | show`: the working-day calendar deadlines are counted on.

Only click is imported at module level (`duban --help` starts fast).
"""

from __future__ import annotations

import click

from duban.commands.support import json_option, out, settings


@click.group()
def calendar() -> None:
    """The working-day calendar (holidays and make-up working days)."""


@calendar.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def calendar_import(file: str, as_json: bool) -> None:
    """Load a year's schedule (YAML or CSV); recompute approximate deadlines it covers."""
    r = settings().app.import_calendar(file)
    kind = "" if r["official"] else " as local overrides (a CSV does not make a year's schedule known)"
    out(r, as_json, lambda: f"imported {r['days']} days for {', '.join(map(str, r['years']))}{kind} ({r['source']}); "
        f"recomputed deadlines of {len(r['recomputed_cases'])} case(s)")


@calendar.command("show")
@click.argument("year", type=int)
@json_option
def calendar_show(year: int, as_json: bool) -> None:
    """Holidays and make-up working days of a year."""
    from duban.present.output import table

    r = settings().app.calendar(year)

    def human() -> str:
        if not r["known"]:
            return f"{year}: no official schedule loaded — deadlines count weekends only and are marked approximate"
        return f"{year} ({r['source']})\n" + table(r["days"], [("date", "日期"), ("kind_label", "类型"), ("name", "名称")])

    out(r, as_json, human)
