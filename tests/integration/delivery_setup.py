"""What the delivery tests share: the settings pointing at the test receivers, a directory
with mailboxes, and cases left to lapse until their 催办通知 fall due."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from duban.clock import ManualClock
from duban.delivery.outbox import Outbox
from duban.delivery.settings import NotifySettings, parse
from duban.service.app import App
from duban.storage.database import Database
from duban.storage.tables import AUDIT
from tests.integration.delivery_receivers import DINGTALK_SECRET, FEISHU_SECRET, WEBHOOK_SECRET, HttpReceiver

TZ = ZoneInfo("Asia/Shanghai")
OPENED = datetime(2026, 11, 2, 9, tzinfo=TZ)
RED_CARD = datetime(2026, 12, 1, 9, tzinfo=TZ)  # the day after the 2026-11-30 due date: 催办通知 to the lead unit
SECRETS = {"webhook": {"secret_env": WEBHOOK_SECRET}, "dingtalk": {"secret_env": DINGTALK_SECRET},
           "feishu": {"secret_env": FEISHU_SECRET}}
ENV = {"WH": WEBHOOK_SECRET, "DT": DINGTALK_SECRET, "FS": FEISHU_SECRET}  # the variables the settings name


def notify_section(rx: HttpReceiver, smtp_port: int, *, via: list[str], retry: dict[str, Any] | None = None,
                   **channel_options: dict[str, Any]) -> dict[str, Any]:
    channels: dict[str, Any] = {
        "email": {"host": "127.0.0.1", "port": smtp_port, "tls": "none", "from": "区委督查室 <duban@example.gov.cn>"},
        "webhook": {"url": rx.url("webhook"), "secret_env": "WH", "timeout": 2},
        "dingtalk": {"url": rx.url("dingtalk") + "?access_token=robot-token", "secret_env": "DT", "timeout": 2},
        "wecom": {"url": rx.url("wecom") + "?key=wecom-test-key", "msgtype": "text", "timeout": 2},
        "feishu": {"url": rx.url("feishu"), "secret_env": "FS", "timeout": 2},
    }
    for name, extra in channel_options.items():
        channels[name] = {**channels[name], **extra}
    return {"board_url": "https://duban.example.gov.cn", "office": "区委督查室",
            "retry": retry or {"attempts": 3, "first_delay": 60},
            "routes": [{"kinds": ["催办通知", "督办通知"], "to": "unit", "via": via}],
            **{k: v for k, v in channels.items() if k in via}}


def notify(rx: HttpReceiver, smtp_port: int, *, via: list[str], retry: dict[str, Any] | None = None,
           **channel_options: dict[str, Any]) -> NotifySettings:
    return parse(notify_section(rx, smtp_port, via=via, retry=retry, **channel_options), "office.yaml")


def new_app(url: str) -> App:
    """An initialised office: 督查室 wang, two 区发改局 users with mailboxes, 区财政局 without."""
    a = App(Database(url), ManualClock(OPENED), TZ)
    a.init()
    a.add_user("wang", "office", None)
    a.add_user("fgj", "unit", "区发改局", email="fgj@example.gov.cn")
    a.add_user("fgj2", "unit", "区发改局", email="fgj2@example.gov.cn")
    a.add_user("czj", "unit", "区财政局")  # no mailbox
    return a


def red_card(app: App, settings: NotifySettings, cases: int = 1, unit: str = "区发改局") -> None:
    """Open `cases` cases due 2026-11-30, let them lapse: one 催办通知 each to the unit."""
    app.outbox = Outbox(settings)
    assert isinstance(app.clock, ManualClock)
    app.clock.set(OPENED)
    for i in range(cases):
        case = app.open_case("supervision", title=f"老旧小区改造{i + 1}", lead_unit=unit, co_units=[], due="2026-11-30",
                             values={}, actor="wang")
        app.fire(case["id"], "accept", actor="fgj" if unit == "区发改局" else "czj")
    app.clock.set(RED_CARD - timedelta(days=3))
    app.tick()  # the yellow card: 预警提醒, not routed
    app.clock.set(RED_CARD)
    app.tick()


def rows(app: App, table: Any) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]


def events(app: App, action: str) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(AUDIT).where(AUDIT.c.action == action).order_by(AUDIT.c.seq))]
