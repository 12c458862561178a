"""`duban init` and `duban tick`: the operator's two top-level commands — make the database
ready, and fire whatever timers are due now.

Only click is imported at module level (`duban --help` starts fast).
"""

from __future__ import annotations

import click

from duban.commands.support import json_option, out, settings


@click.command()
@json_option
def init(as_json: bool) -> None:
    """Create or upgrade the database (idempotent); seed the working-day calendar."""
    result = settings().app.init()
    years = result["calendar_years"]
    out(result, as_json, lambda: f"database ready: {result['database']}"
        + (f" (calendar {years[0]}–{years[1]} seeded from chinesecalendar)" if years else ""))


@click.command()
@json_option
def tick(as_json: bool) -> None:
    """Fire every timer due up to now (idempotent); prints what fired."""
    result = settings().app.tick()
    out({"fired_timers": result.fired_timers, "lines": result.lines}, as_json,
        lambda: "\n".join(result.lines) or "没有到期的计时器")
