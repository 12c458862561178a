"""The lists the board and the API show: the ledger's filters and pages, and 我的待办.

A ledger page (`ledger`) is asked of the database (`App.case_page`, issue 16): workflow,
state, unit and overdue checked as `App.list_cases` checks them (SPEC §16), what the person
may see (`scope.sees`), escalation level, due date and a title search, all as SQL; pages are
keyset pages by case id (stable while cases are added), views built for the page's rows
only; the downloads walk those pages (`pages`). `cases` is the whole list the same filters
name (a title search SQL cannot match exactly). 我的待办, 已办 and 协办 are keyset pages by
(nearest running deadline, id), soonest first: the to-do asks for the open cases in a state where the
person's role acts and checks each row read against what it allows, until its page is full.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from duban.clock import parse_instant
from duban.engine.ports import COUNT_CAP, CaseQuery
from duban.errors import UsageError
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
        return shown, next_cursor, (min(len(found), COUNT_CAP + 1) if count else None)
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


def lines(app: App, user: User, found: list[dict[str, Any]], *, todo: bool, ordered: bool = False) -> list[Line]:
    """Cases as to-do lines, nearest running deadline first (`ordered`: in the order given,
    a page the database ordered); with `todo`, only those on which the user has an action now."""
    now, calendar = app.clock.now(), working_calendar(app)
    out = []
    for c in found:
        acts = scope.todo_actions(app, user, c) if todo else []
        if todo and not acts:
            continue
        shown = cards.deadlines(c, now, app.tz, calendar)
        out.append((cards.due_sort_key(shown), Line(c, cards.nearest(shown), cards.case_card(c, shown), acts)))
    if not ordered:
        out.sort(key=lambda pair: pair[0])
    return [line for _, line in out]


# -- 我的待办, 已办, 协办: pages by nearest deadline -------------------------------------------
# Their order is the board's "nearest deadline first" (SPEC §13): of a case's running deadlines
# the one falling due first (签收时限 before 办结时限), cases with none running last, then by id
# (`cases.next_due_at`, `storage.listing`). A page's cursor is its last case's (that instant, id), written
# `<microseconds since 1970 UTC>_<id>` (`_<id>` when none runs).
Key = tuple[datetime | None, int]


def cursor_text(key: Key | None) -> str | None:
    if key is None:
        return None
    due, case_id = key
    if due is None:
        return f"_{case_id}"
    delta = due - _EPOCH
    return f"{(delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds}_{case_id}"


def parse_cursor(text: str | None) -> Key | None:
    """A to-do, 已办 or 协办 cursor as `cursor_text` wrote it; anything else is 422."""
    if text is None or text == "":
        return None
    due, sep, case_id = text.partition("_")
    number = due.removeprefix("-")
    if (not sep or len(text) > 40 or not case_id.isascii() or not case_id.isdigit() or int(case_id) >= 2**63
            or (due and (not number.isascii() or not number.isdigit()))):
        raise ApiError(422, "invalid", f"cursor {text[:40]!r}：不是下一页的游标（请用上一页给出的 next_cursor）",
                       field="cursor")
    try:
        at = _EPOCH + timedelta(microseconds=int(due)) if due else None
    except OverflowError:
        raise ApiError(422, "invalid", f"cursor {text[:40]!r}：不是下一页的游标", field="cursor") from None
    return at, int(case_id)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _key(case: dict[str, Any]) -> Key:
    """A case's place in the order: its nearest running deadline (as `cards.nearest`), its id."""
    running = [datetime.fromisoformat(d["due_at"]) for d in case.get("deadlines", [])
               if d["status"] == "running"] if case.get("closed_at") is None else []
    return min(running, default=None), case["id"]


def todo_page(app: App, user: User, cursor: Key | None = None, limit: int = PAGE) -> tuple[list[Line], Key | None]:
    """我的待办, one page: the open cases the user sees with a step of theirs to take now, soonest
    due first, and the cursor of the next page. The database keeps the open cases the unit
    sees in a state where the user's role acts (`App.todo_cases`); each row read is checked
    against the triggers it allows, only until the page is full; views for the page only."""
    found, more = app.todo_cases(user.role, scope.OPTIONAL, user.unit if user.role == "unit" else None,
                                 after=cursor, limit=limit)
    shown = lines(app, user, found, todo=True, ordered=True)
    return shown, (_key(found[-1]) if more and found else None)


def todo(app: App, user: User) -> list[Line]:
    """The first page of 我的待办 (`todo_page`)."""
    return todo_page(app, user)[0]


def done_page(app: App, user: User, cursor: Key | None = None, limit: int = PAGE) -> tuple[list[Line], Key | None]:
    """已办, one page: the cases the user has fired a trigger on or opened (their own audit
    events) and still sees, in the to-do's order."""
    q = CaseQuery(acted_by=user.name, seen_by=user.unit if user.role == "unit" else None, by_due=True,
                  after_due=cursor, limit=limit + 1)
    return _due_page(app, user, q, limit)


def co_handled_page(app: App, user: User, cursor: Key | None = None, limit: int = PAGE
                    ) -> tuple[list[Line], Key | None]:
    """协办, one page: open cases the user's unit co-handles (配合单位), in the to-do's order."""
    if user.role != "unit" or user.unit is None:
        return [], None
    q = CaseQuery(co_of=user.unit, open_only=True, by_due=True, after_due=cursor, limit=limit + 1)
    return _due_page(app, user, q, limit)


def _due_page(app: App, user: User, q: CaseQuery, limit: int) -> tuple[list[Line], Key | None]:
    found, _ = app.case_page(q)
    shown = found[:limit]
    return lines(app, user, shown, todo=False, ordered=True), (_key(shown[-1]) if len(found) > limit else None)


def tab_page(app: App, user: User, tab: str, cursor: str | None) -> tuple[list[Line], str | None]:
    """A tab of the board's 我的待办 page, one page: its lines and the next page's cursor."""
    if tab == "watched":
        return watched(app, user), None
    paged = {"todo": todo_page, "done": done_page, "co": co_handled_page}[tab]
    shown, key = paged(app, user, parse_cursor(cursor))
    return shown, cursor_text(key)


def pages(app: App, user: User, f: Filters, size: int = 500) -> Iterator[list[dict[str, Any]]]:
    """`cases`, a keyset page at a time (`ledger`): the downloads stream the whole list without
    holding it. Each page is read in a transaction of its own, in id order, so a case opened
    meanwhile comes last if at all and none is repeated or skipped."""
    if not all(map(_like_exact, (f.q or "").strip().casefold())):  # `ledger` would read them all for each page
        found = cases(app, user, f)
        yield from (found[i:i + size] for i in range(0, len(found), size))
        return
    cursor: int | None = None
    while True:
        shown, cursor, _ = ledger(app, user, f, size, cursor)
        if shown:
            yield shown
        if cursor is None:
            return


def watched(app: App, user: User) -> list[Line]:
    """关注: the cases the office user watches, most recently watched first."""
    return lines(app, user, app.watched(user.name), todo=False) if user.role == "office" else []


def working_calendar(app: App) -> WorkingCalendar:
    with app.db.read() as conn:
        return app.engine(conn).calendar
