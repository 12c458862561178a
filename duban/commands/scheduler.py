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

from duban.commands.support import Seconds
from duban.commands.support import out as _out
from duban.commands.support import settings as _settings

# The defaults live here, the one place a user sees them (`--help`).
DEFAULT_INTERVAL = 10.0
DEFAULT_BATCH = 200
DEFAULT_CHUNK = 100
DEFAULT_LEASE = 60.0

_positive = Seconds()  # finite: nan and inf are refused (SPEC §16)


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
@click.option("--key", "key_file", type=click.Path(dir_okay=False),
              help="The office's checkpoint key (audit keygen): sign a checkpoint of the audit log daily and after "
                   "each export.")
@click.option("--once", is_flag=True, help="Sweep once (catching up everything due), then exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the sweep as one JSON document.")
def run(interval: float, node: str | None, batch: int, chunk: int, lease: float, key_file: str | None, once: bool,
        as_json: bool) -> None:
    """Fire due timers now and then every --interval seconds, until SIGTERM or SIGINT.

    Logs one line per sweep and per fired timer on stderr (JSON unless stderr is a
    terminal; DUBAN_LOG_LEVEL, default INFO). On SQLite only one scheduler may run per
    database file (a second one exits 4); on PostgreSQL run as many as you like.
    """
    from duban.commands.daemon import Config, Scheduler, default_node, single_node_lock
    from duban.logconfig import configure

    configure(default_level="INFO")
    app = _settings().app
    config = Config(node=node or default_node(), interval=interval, batch=batch, chunk=chunk, lease=lease)
    from duban.delivery.start import deliverer_for

    # A notify section in DUBAN_SETTINGS: deliver beside the sweep; a bad one is refused now (exit 2).
    deliverer = deliverer_for(app, config.node, required=False)
    if key_file is not None:
        from duban.service.keys import load_signing_key

        signing_key = load_signing_key(key_file)  # a missing or loose key: exit 2 before anything runs
    lock = single_node_lock(app.db, config.node)
    try:
        runner = Scheduler(app, config, deliverer)
        if key_file is not None:
            from duban.service.checkpoints import Duty

            Duty(app, signing_key).attach(runner)
        if not once:
            runner.run_forever()
            return
        result = runner.run_once()
        _out(result.as_json(), as_json, lambda: "\n".join(
            [*result.lines, f"节点 {result.node}：触发 {result.fired} 个计时器"
             + (f"，{result.refused} 个未执行（已记入审计）" if result.refused else "")
             + (f"，{result.failed} 个失败" if result.failed else "")
             + ("（提前停止）" if result.stopped else "")]))
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
    from duban.commands.daemon import status as scheduler_status

    app = _settings().app
    result = scheduler_status(app, interval, DEFAULT_INTERVAL)
    labels = _timer_labels(app, {t["case_id"] for t in result["oldest_late"]})
    for t in result["oldest_late"]:
        t["label"] = labels.get(t["timer_id"], f"{t['deadline']}#{t['rung']}")
    _out(result, as_json, lambda: status_text(result))


def _timer_labels(app: Any, case_ids: set[int]) -> dict[int, str]:
    """The labels (签收时限 · 催签) of the timers of a few cases, by timer id: read through the
    cases' views, which know each case's pinned workflow; the late list is short."""
    from duban.errors import DubanError

    labels: dict[int, str] = {}
    for case_id in sorted(case_ids):
        try:
            labels.update({t["id"]: t["label"] for t in app.show(case_id)["timers"]})
        except DubanError:  # the case went away under us: its identifiers will do
            continue
    return labels


def _span(seconds: float | None) -> str:
    """A length of time as people read it: 2天 3小时, 5分钟, 40秒 (at most two parts)."""
    if seconds is None:
        return "-"
    s = int(abs(seconds))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{value}{unit}" for value, unit in ((days, "天"), (hours, "小时"), (minutes, "分钟")) if value]
    return " ".join(parts[:2]) if parts else f"{secs}秒"


def status_text(r: dict[str, Any]) -> str:
    """The human form of `scheduler status` (the JSON form keeps identifiers and ISO instants)."""
    from duban.present.labels import shown_time as at

    lines = [
        f"现在 {at(r['now'])} — 到期超过 {r['interval_seconds']:g} 秒仍未触发即为“迟滞”",
        f"计时器：待触发 {r['pending']}，已认领 {r['claimed']}，已到期 {r['due']}，迟滞 {r['late']}"
        + (f"；下一个到期 {at(r['next_due_at'])}" if r["next_due_at"] else ""),
    ]
    if r["oldest_late"]:
        lines.append("迟滞的计时器（最早的在前）：")
        for t in r["oldest_late"]:
            held = f"，由 {t['claimed_by']} 认领至 {at(t['lease_until'])}" if t["claimed_by"] else ""
            lines.append(f"  计时器 {t['timer_id']}  案件 {t['case_id']}  {t['label']}  "
                         f"到期 {at(t['due_at'])}  迟滞 {_span(t['late_seconds'])}{held}")
    if r["claims"]:
        lines.append("认领中：")
        lines.extend(f"  {c['node']}：{c['timers']} 个计时器，租约至 {at(c['lease_until'])}"
                     + ("（已过期：任何节点都可接手）" if c["expired"] else "") for c in r["claims"])
    if not r["nodes"]:
        lines.append("调度节点：尚无节点在此数据库上运行过")
    else:
        lines.append("调度节点：")
        for n in r["nodes"]:
            swept = (f"上次扫描 {at(n['last_sweep_at'])}（{_span(n['since_last_sweep_seconds'])}前，"
                     f"触发 {n['last_sweep_fired']} 个）" if n["last_sweep_at"] else "尚未扫描")
            state = f"，已于 {at(n['stopped_at'])} 停止" if n["stopped_at"] else ""
            lines.append(f"  {n['node']}（{n['host']} 上的进程 {n['pid']}，每 {n['interval_seconds']:g} 秒）："
                         f"{swept}，累计触发 {n['fired_total']} 个{state}")
    return "\n".join(lines)
