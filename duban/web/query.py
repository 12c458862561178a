"""The lists the board and the API show: the ledger's filters and pages, and 我的待办.

A ledger page (`ledger`) is asked of the database (`App.case_page`, issue 16): workflow,
state, unit and overdue checked as `App.list_cases` checks them (SPEC §16), what the person
may see (`scope.sees`), escalation level, due date and a title search, all as SQL; pages are
keyset pages by case id (stable while cases are added), views built for the page's rows
only. `cases` is the whole list the same filters name (the downloads; a title search SQL
cannot match exactly). The to-do asks for the open cases in a state where the person's role
acts and checks each against what it allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from duban.clock import parse_instant
from duban.engine.ports import CaseQuery
from duban.errors import UsageError
from duban.storage.tables import AUDIT
from duban.web import cards, scope
from duban.web.api_models import NUL
from duban.web.errors import ApiError

if TYPE_CHECKING:
    from duban.access.service import User
    from duban.engine.calendar import WorkingCalendar
    from duban.service.app import App

MAX_LIMIT = 200
PAGE = 50


@dataclass(frozen=True)
class Filters:
    workflow: str | None = None
    state: str | None = None
    unit: str | None = None
    overdue: bool | None = None
    level: int | None = None
    due_before: str | None = None
    q: str | None = None

    def check(self) -> None:
        """No filter may hold a NUL (nothing a person types; PostgreSQL cannot compare it)."""
        for name, value in self.__dict__.items():
            if isinstance(value, str) and NUL in value:
                raise ApiError(422, "invalid", f"{name}：不能含 NUL 字符", field=name)

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for links to the next page and the download)."""
        shown = {k: v for k, v in self.__dict__.items() if v not in (None, "")}
        return {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in shown.items()}


def _checked(app: App, f: Filters) -> datetime | None:
    """The filters checked (NUL, level), and their due date as an instant."""
    f.check()
    due_before = parse_instant(f.due_before, app.tz, what="due_before") if f.due_before else None
    if f.level is not None and not 0 <= f.level <= 5:
        raise UsageError(f"level {f.level}: escalation levels are 0 to 5")
    return due_before


def cases(app: App, user: User, f: Filters) -> list[dict[str, Any]]:
    """Every case matching the filters that the user may see, in id order."""
    due_before = _checked(app, f)
    found = app.list_cases(state=f.state or None, unit=f.unit or None, workflow=f.workflow or None,
                           overdue=f.overdue)
    needle = (f.q or "").strip().casefold()
    return [c for c in found if scope.sees(user, c)
            and (f.level is None or c["escalation_level"] == f.level)
            and (due_before is None or (c["due_at"] is not None and datetime.fromisoformat(c["due_at"]) < due_before))
            and (not needle or needle in c["title"].casefold())]


def ledger(app: App, user: User, f: Filters, limit: int, cursor: int | None, *, count: bool = False
           ) -> tuple[list[dict[str, Any]], int | None, int | None]:
    """`cases` then `page`, asked of the database (keyset by id, views for the page's rows
    only): the page, the cursor of the next one, and with `count` how many match in all.
    A title search SQL's LIKE cannot match exactly as `casefold` does (a needle with a cased
    or other letter) takes `cases`' way, over every case the other filters leave."""
    due_before = _checked(app, f)
    needle = (f.q or "").strip().casefold()
    if not all(map(_like_exact, needle)):
        found = cases(app, user, f)
        shown, next_cursor = page(found, limit, cursor)
        return shown, next_cursor, (len(found) if count else None)
    q = CaseQuery(state=f.state or None, unit=f.unit or None, workflow=f.workflow or None, overdue=f.overdue,
                  level=f.level, due_before=due_before, title=needle or None,
                  seen_by=user.unit if user.role == "unit" else None, after=cursor, limit=limit + 1)
    found, total = app.case_page(q, count=count)
    shown = found[:limit]
    return shown, (shown[-1]["id"] if len(found) > limit else None), total


def _like_exact(ch: str) -> bool:
    """Whether LIKE finds `ch` where `casefold` would, on both databases: a character that has
    no case and that no other character folds to (ASCII other than letters; from U+2000 on,
    the characters with no case: CJK, full-width punctuation, “”……). SQLite's LIKE folds
    ASCII letters only, PostgreSQL's none."""
    return (ch.isascii() and not ch.isalpha()) or (ord(ch) >= 0x2000 and ch.lower() == ch == ch.upper())


def page(items: list[dict[str, Any]], limit: int, cursor: int | None) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `limit` items after the case id `cursor`, and the cursor of the next page."""
    after = [c for c in items if cursor is None or c["id"] > cursor]
    shown = after[:limit]
    return shown, (shown[-1]["id"] if len(after) > limit else None)


@dataclass(frozen=True)
class Line:
    """One case of a to-do list as the board shows it."""

    case: dict[str, Any]
    deadline: cards.Deadline | None
    card: str | None
    actions: list[scope.Action]

    @property
    def card_label(self) -> str:
        return cards.CARD_LABELS.get(self.card or "", "已办结")


def lines(app: App, user: User, found: list[dict[str, Any]], *, todo: bool) -> list[Line]:
    """Cases as to-do lines, nearest running deadline first; with `todo`, only those on
    which the user has an action now."""
    now, calendar = app.clock.now(), working_calendar(app)
    out = []
    for c in found:
        acts = scope.todo_actions(app, user, c) if todo else []
        if todo and not acts:
            continue
        shown = cards.deadlines(c, now, app.tz, calendar)
        out.append((cards.due_sort_key(shown), Line(c, cards.nearest(shown), cards.case_card(c, shown), acts)))
    out.sort(key=lambda pair: pair[0])
    return [line for _, line in out]


def todo(app: App, user: User) -> list[Line]:
    """我的待办: the open cases the user sees with a step of theirs to take now. The database
    is asked for those in a state where the user's role acts (`App.todo_cases`); each is
    then checked against the triggers it allows (`scope.todo_actions`). The database already
    keeps to open cases the unit sees (`seen_by`, as the ledger's pages do)."""
    found = app.todo_cases(user.role, scope.OPTIONAL, user.unit if user.role == "unit" else None)
    return lines(app, user, found, todo=True)


def done(app: App, user: User) -> list[Line]:
    """已办: the cases the user has fired a trigger on or opened (their own audit events)."""
    with app.db.read() as conn:
        ids = set(conn.execute(select(AUDIT.c.case_id).distinct().where(
            AUDIT.c.actor == user.name, AUDIT.c.case_id.is_not(None))).scalars())
    return lines(app, user, [c for c in app.list_cases() if c["id"] in ids and scope.sees(user, c)], todo=False)


def co_handled(app: App, user: User) -> list[Line]:
    """协办: open cases the user's unit co-handles (配合单位)."""
    if user.role != "unit":
        return []
    found = [c for c in app.list_cases(unit=user.unit) if c["closed_at"] is None and user.unit in c["co_units"]]
    return lines(app, user, found, todo=False)


def watched(app: App, user: User) -> list[Line]:
    """关注: the cases the office user watches, most recently watched first."""
    return lines(app, user, app.watched(user.name), todo=False) if user.role == "office" else []


def working_calendar(app: App) -> WorkingCalendar:
    with app.db.read() as conn:
        return app.engine(conn).calendar
