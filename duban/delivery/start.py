"""Starting a deliverer: the settings checked whole before anything is sent (SPEC §14).

An unknown channel or key, a route to a unit or user nobody knows, a secret variable that
is not set: each is refused here, exit 2, naming the key (never a secret's value), before
a deliverer claims anything — by `duban notify run` and by `duban scheduler run` alike.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sqlalchemy import Connection, inspect, text

from duban.delivery.deliverer import DEFAULT_BATCH, DEFAULT_LEASE, Deliverer
from duban.delivery.settings import NotifySettings, check_recipients, load, resolve_secrets, settings_path
from duban.errors import UsageError
from duban.service.app import App


def known_recipients(conn: Connection) -> tuple[set[str], set[str]]:
    """The units (the directory, users' units, cases' units) and the users of the database."""
    units = {r[0] for r in conn.execute(text("SELECT unit FROM users WHERE unit IS NOT NULL"))}
    units |= {r[0] for r in conn.execute(text("SELECT DISTINCT unit FROM case_units"))}
    if inspect(conn).has_table("units"):  # the unit directory (SPEC §16), where it exists
        units |= {r[0] for r in conn.execute(text("SELECT name FROM units"))}
    users = {r[0] for r in conn.execute(text("SELECT name FROM users"))}
    return units, users


def checked_settings(app: App, file: str | None, *, required: bool) -> NotifySettings | None:
    notify = load(file)
    if notify is None:
        if required:
            where = f"{file} has no 'notify' section" if file else "DUBAN_SETTINGS is not set"
            raise UsageError(f"nothing to deliver by: {where} (see README \"Notices\": notify: {{email: …, routes: […]}})")
        return None
    with app.db.read() as conn:
        units, users = known_recipients(conn)
    check_recipients(notify, units, users)
    return notify


def deliverer_for(app: App, node: str, *, required: bool, batch: int = DEFAULT_BATCH, lease: float = DEFAULT_LEASE,
                  draw: Callable[[], float] = random.random, file: str | None = None) -> Deliverer | None:
    """A deliverer for the office's settings (DUBAN_SETTINGS), or None when there is no
    `notify` section and none is `required`. Raises SettingsError (exit 2) naming the key."""
    notify = checked_settings(app, file or settings_path(), required=required)
    if notify is None:
        return None
    secrets = resolve_secrets(notify)
    return Deliverer(app, notify, secrets, node, batch=batch, lease=lease, draw=draw)
