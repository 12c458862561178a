"""`duban notify run` / `notify status`: the notices delivered (SPEC §14).

Only click at module level (`duban --help` stays fast); `duban.cli` registers the group.
Global options come from the root context (`duban.commands.support.settings`).
"""

from __future__ import annotations

import click

from duban.commands.support import out as _out
from duban.commands.support import settings as _settings

DEFAULT_INTERVAL = 10.0
_positive = click.FloatRange(min=0, min_open=True)


@click.group()
def notify() -> None:
    """Notices delivered: email, webhooks and the 钉钉 / 企业微信 / 飞书 robots (settings: DUBAN_SETTINGS)."""


@notify.command("run")
@click.option("--once", is_flag=True, help="Send everything due now (retries included), then exit.")
@click.option("--interval", type=_positive, default=DEFAULT_INTERVAL, show_default=True,
              help="Seconds between passes when running on.")
@click.option("--node", help="This deliverer's name in claims; unique per running process. [default: HOST-PID]")
@click.option("--batch", type=click.IntRange(min=1), default=50, show_default=True,
              help="Deliveries claimed, sent and recorded together.")
@click.option("--lease", type=_positive, default=120.0, show_default=True,
              help="Seconds a claim stays reserved; a killed deliverer's claims are sent again after it.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the pass as one JSON document.")
def run(once: bool, interval: float, node: str | None, batch: int, lease: float, as_json: bool) -> None:
    """Deliver the notices the office's routes send somewhere, retrying failures with back-off.

    Refuses to start (exit 2, naming the key) on an unknown channel, a route to an unknown
    unit or user, or a secret variable that is not set. Several may run on PostgreSQL; on
    SQLite run one (or let `duban scheduler run` deliver beside its sweep).
    """
    from duban.commands.daemon import _stop_on_signals, default_node
    from duban.delivery.start import deliverer_for
    from duban.logconfig import configure

    configure(default_level="INFO")
    app = _settings().app
    deliverer = deliverer_for(app, node or default_node(), required=True, batch=batch, lease=lease)
    assert deliverer is not None
    with _stop_on_signals(deliverer.stop):
        if not once:
            deliverer.run_forever(interval)
            return
        try:
            result = deliverer.run_once(keep_lines=True)
        finally:
            deliverer.close()
    _out(result.as_json(), as_json, lambda: "\n".join(
        [*result.lines, f"送达 {result.sent}，重试中 {result.retrying}，失败 {result.failed}"
         + (f"，限速顺延 {result.deferred}" if result.deferred else "") + f"（共尝试 {result.attempts} 次）"]))


@notify.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document and nothing else.")
def status(as_json: bool) -> None:
    """Pending, retrying and failed deliveries per channel, and the oldest undelivered notice."""
    from duban.delivery.status import status as delivery_status
    from duban.delivery.status import status_text

    app = _settings().app
    with app.db.read() as conn:
        result = delivery_status(conn, app.clock.now(), app.tz)
    _out(result, as_json, lambda: status_text(result))

