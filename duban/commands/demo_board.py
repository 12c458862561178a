"""The end of `duban demo`: the sample's people get a demo password, and the demo says how
to open the board on what it built (`duban serve`, the URL, who can sign in)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from duban.service.app import App

# Printed by the demo and in the README: a sample database, never an office's.
DEMO_PASSWORD = "Demo-duban-2017"
URL = "http://127.0.0.1:8080/"


def open_the_board(app: App, db_url: str, users: list[tuple[str, str, str | None]], as_of: datetime,
                   say: Callable[[str], Any]) -> dict[str, Any]:
    """Give every demo user the demo password (through the sign-in service, audited like
    `duban user passwd`) and print how to serve the board as of the demo's last day."""
    from duban.access.service import Access
    from duban.present.labels import role_label

    access = Access(app)
    for name, _, _ in users:
        access.set_password(name, DEMO_PASSWORD, via="demo")
    now = as_of.astimezone(app.tz).strftime("%Y-%m-%dT%H:%M")
    command = f"duban --db {db_url} --now {now} serve --insecure-cookies"
    say("\n打开督办看板（按演示的最后一天显示）：")
    say(f"  {command}")
    say(f"  然后在浏览器打开 {URL}，用下列任一用户登录，密码均为 {DEMO_PASSWORD}：")
    say("  " + "、".join(f"{name}（{role_label(role)}{'·' + unit if unit else ''}）" for name, role, unit in users))
    return {"command": command, "url": URL, "password": DEMO_PASSWORD, "users": [u[0] for u in users], "as_of": now}
