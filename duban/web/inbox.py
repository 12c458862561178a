"""A signed-in person's notices (通知, SPEC §13): the list on /notices and the API, and the
number of unread ones that every page's header shows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from duban.service.receipts import recipient_of, unread_count

if TYPE_CHECKING:
    from duban.access.service import User
    from duban.service.app import App


def my_notices(app: App, user: User) -> list[dict[str, Any]]:
    """The notices to the user's unit, or to the user's role; newest first."""
    found = reversed(app.notices(unit=recipient_of(user.role, user.unit)))
    # `read`: whether this user marked it read (标为已读); `read_by` lists every receipt
    return [{**n, "read": any(r["reader"] == user.name for r in n["read_by"])} for n in found]


def unread(app: App, user: User) -> int:
    """How many of `my_notices` the user has not marked read (counted by the database: every
    page asks, and building the whole list for its length cost more than the page)."""
    return unread_count(app, user.name, recipient_of(user.role, user.unit))
