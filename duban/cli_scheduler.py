"""`duban scheduler run` and `duban scheduler status` (SPEC §6, §8).

Only click is imported here at module level: `duban --help` must stay fast, so the
scheduler, SQLAlchemy and APScheduler load inside the commands. `duban.cli` imports this
module and registers the group. The global options are read from the root context's
object rather than through `duban.cli` helpers, so this module never imports `duban.cli`
(which would be a second copy of it under `python -m duban.cli`).
"""

from __future__ import annotations

from typing import Any

import click

from duban.cli_support import out as _out
from duban.cli_support import settings as _settings

# The defaults live here, the one place a user sees them (`--help`).
DEFAULT_INTERVAL = 10.0
DEFAULT_BATCH = 200
DEFAULT_CHUNK = 100
DEFAULT_LEASE = 60.0

_positive = click.FloatRange(min=0, min_open=True)


@click.group()
def scheduler() -> None:
    """The scheduler: fires due timers and escalates, on one or several nodes."""


@scheduler.command("run")
@click.option("--interval", type=_positive, default=DEFAULT_INTERVAL, show_default=True,
              help="Seconds between sweeps; a timer fires at most this late.")
@click.option("--node", help="This process's name in claims and status; unique per running process. [default: HOST-PID]")
@click.option("--batch", type=click.IntRange(min=1), default=DEFAULT_BATCH, show_default=True,
              help="Timers claimed per claim transaction.")
@click.option("--chunk", type=click.IntRange(min=1), default=DEFAULT_CHUNK, show_default=True,
              help="Claimed timers fired per transaction: larger is faster, smaller holds case locks for less time.")
@click.option("--lease", type=_positive, default=DEFAULT_LEASE, show_default=True,
              help="Seconds a claim stays reserved; a killed node's claims free up after it.")
@click.option("--once", is_flag=True, help="Sweep once (catching up everything due), then exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the sweep as one JSON document.")
def run(interval: float, node: str | None, batch: int, chunk: int, lease: float, once: bool, as_json: bool) -> None:
    """Fire due timers now and then every --interval seconds, until SIGTERM or SIGINT.

    Logs one line per sweep and per fired timer on stderr (JSON unless stderr is a
    terminal; DUBAN_LOG_LEVEL, default INFO). On SQLite only one scheduler may run per
    database file (a second one exits 4); on PostgreSQL run as many as you like.
    """
    from duban.logconfig import configure
    from duban.scheduler import Config, Scheduler, default_node, single_node_lock

    configure(default_level="INFO")
    app = _settings().app
    config = Config(node=node or default_node(), interval=interval, batch=batch, chunk=chunk, lease=lease)
    lock = single_node_lock(app.db, config.node)
    try:
        runner = Scheduler(app, config)
        if not once:
            runner.run_forever()
            return
        result = runner.run_once()
        _out(result.as_json(), as_json, lambda: "\n".join(
            [*result.lines, f"node {result.node}: fired {result.fired} timer(s)"
             + (f", {result.failed} failed" if result.failed else "")
             + (" — stopped early" if result.stopped else "")]))
        if result.failed:
            from duban.errors import DubanError

            raise DubanError(f"{result.failed} timer(s) failed to fire (see the log 'timer.failed'); "
                             "the next sweep tries them again")
    finally:
        if lock is not None:
            lock.close()


@scheduler.command("status")
@click.option("--interval", type=_positive, default=None,
              help="Count a timer late once due this many seconds. [default: the nodes' interval]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document and nothing else.")
def status(interval: float | None, as_json: bool) -> None:
    """Pending, due and late timers, claims held, and the last sweep of each node."""
    from duban.scheduler import status as scheduler_status

    result = scheduler_status(_settings().app, interval, DEFAULT_INTERVAL)
    _out(result, as_json, lambda: status_text(result))


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(abs(seconds))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if value]
    return " ".join(parts[:2]) if parts else f"{secs}s"


def status_text(r: dict[str, Any]) -> str:
    """The human form of `scheduler status`."""
    lines = [
        f"now {r['now']} — late means due more than {r['interval_seconds']:g}s ago",
        f"timers: {r['pending']} pending, {r['claimed']} claimed, {r['due']} due, {r['late']} late"
        + (f"; next due {r['next_due_at']}" if r["next_due_at"] else ""),
    ]
    if r["oldest_late"]:
        lines.append("late timers (oldest first):")
        for t in r["oldest_late"]:
            held = f", claimed by {t['claimed_by']} until {t['lease_until']}" if t["claimed_by"] else ""
            lines.append(f"  timer {t['timer_id']}  case {t['case_id']}  {t['deadline']}#{t['rung']}  "
                         f"due {t['due_at']}  late {_span(t['late_seconds'])}{held}")
    if r["claims"]:
        lines.append("claims held:")
        lines.extend(f"  {c['node']}: {c['timers']} timer(s), lease until {c['lease_until']}"
                     + (" (expired: any node may take them)" if c["expired"] else "") for c in r["claims"])
    if not r["nodes"]:
        lines.append("nodes: none has run against this database")
    else:
        lines.append("nodes:")
        for n in r["nodes"]:
            swept = (f"last sweep {n['last_sweep_at']} ({_span(n['since_last_sweep_seconds'])} ago, "
                     f"fired {n['last_sweep_fired']})" if n["last_sweep_at"] else "no sweep yet")
            state = f", stopped {n['stopped_at']}" if n["stopped_at"] else ""
            lines.append(f"  {n['node']} (pid {n['pid']} on {n['host']}, every {n['interval_seconds']:g}s): "
                         f"{swept}, {n['fired_total']} fired in all{state}")
    return "\n".join(lines)
