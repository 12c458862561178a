"""The ledger's pages and the to-do, 已办 and 协办 asked of the database (`query.ledger`,
`query.todo_page` …: keyset pages, filters as WHERE clauses, views for the page's rows only) give
exactly what the whole list filtered in Python gives (`query.cases` + `query.page`, the
brute force), on SQLite and PostgreSQL (issue 16 item 3).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duban.access.service import User
from duban.clock import ManualClock
from duban.errors import DubanError, UsageError
from duban.service.app import App
from duban.web import query, scope
from tests.integration.test_reads_match_brute_force import (
    UNITS,
    USERS,
    _brute_co,
    _brute_done,
    _brute_ledger,
    _due_order,
    _every_case,
    _office,
    _step,
    case_specs,
    filters,
    staffed_office,
    walk_pages,
    walks,
)

TITLES = ("供暖改造", "老旧小区改造 100%完成", "噪声_扰民", "Heating 供暖", "straße 整治", "back\\slash 供暖")
FILTERS = [
    query.Filters(),
    query.Filters(q="供暖"), query.Filters(q="%"), query.Filters(q="_"), query.Filters(q="\\"),
    query.Filters(q="heating"), query.Filters(q="STRASSE"), query.Filters(q="  改造 "),
    query.Filters(workflow="supervision", unit=UNITS[0], q="供暖"), query.Filters(state="办理中"),
    query.Filters(overdue=True), query.Filters(overdue=False, level=0), query.Filters(level=1),
    query.Filters(due_before="2026-09-20"), query.Filters(due_before="2026-10-30T12:00:00+08:00", unit=UNITS[1]),
    query.Filters(workflow="complaint", state="received"),
]


@pytest.fixture(params=["sqlite", "postgres"])
def app(request: pytest.FixtureRequest) -> Iterator[App]:
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    office = staffed_office(url)
    clock = office.clock
    assert isinstance(clock, ManualClock)
    workflows = ("supervision", "complaint", "rectification", "opinion", "proposal")
    for i in range(24):
        wf = workflows[i % 5]
        lead = i % 3
        office.open_case(wf, title=TITLES[i % len(TITLES)], lead_unit=UNITS[lead],
                         co_units=[UNITS[(lead + 1) % 3]] if i % 4 == 0 else [],
                         due="10wd" if wf in ("supervision", "rectification") else None, values={}, actor="wang")
    for days, pick in ((3, 0), (12, 1), (9, 2)):
        clock.advance(days=days)
        office.tick()
        for c in office.list_cases():
            _step(office, c, pick + c["id"])
    with contextlib.suppress(DubanError):
        office.fire(2, "suspend", actor="wang", note="暂缓")
    yield office
    office.db.dispose()


def _pages(app: App, user: User, f: query.Filters, limit: int) -> tuple[list[int], list[int | None]]:
    shown: list[int] = []
    cursors: list[int | None] = []
    cursor = None
    while True:
        page, cursor, _ = query.ledger(app, user, f, limit, cursor)
        shown += [c["id"] for c in page]
        cursors.append(cursor)
        if cursor is None:
            return shown, cursors


def _brute_pages(app: App, user: User, f: query.Filters, limit: int) -> tuple[list[int], list[int | None]]:
    found = query.cases(app, user, f)
    shown: list[int] = []
    cursors: list[int | None] = []
    cursor = None
    while True:
        page, cursor = query.page(found, limit, cursor)
        shown += [c["id"] for c in page]
        cursors.append(cursor)
        if cursor is None:
            return shown, cursors


class TestLedgerInSql:
    def test_every_filter_pages_as_the_brute_force(self, app: App) -> None:
        """For each filter and person: the same cases, the same cursors, the same views, the same count."""
        for who in sorted(USERS):
            user = USERS[who]
            for f in FILTERS:
                for limit in (1, 4, 50):
                    assert _pages(app, user, f, limit) == _brute_pages(app, user, f, limit), (who, f, limit)
                expected = query.cases(app, user, f)
                first, _, total = query.ledger(app, user, f, 50, None, count=True)
                assert total == len(expected), (who, f)
                assert first == expected[:50]

    def test_like_wildcards_match_themselves(self, app: App) -> None:
        office = USERS["office"]
        assert {c["title"] for c in query.ledger(app, office, query.Filters(q="%"), 50, None)[0]} == \
            {"老旧小区改造 100%完成"}
        assert {c["title"] for c in query.ledger(app, office, query.Filters(q="_"), 50, None)[0]} == {"噪声_扰民"}
        assert {c["title"] for c in query.ledger(app, office, query.Filters(q="\\"), 50, None)[0]} == \
            {"back\\slash 供暖"}

    def test_bad_filters_are_refused_as_before(self, app: App) -> None:
        office = USERS["office"]
        for f in (query.Filters(level=6), query.Filters(due_before="tomorrow"), query.Filters(state="没有这个状态"),
                  query.Filters(workflow="nothing"), query.Filters(unit="没有这个单位")):
            with pytest.raises(DubanError) as old:
                query.cases(app, office, f)
            with pytest.raises(DubanError) as new:
                query.ledger(app, office, f, 50, None)
            assert (type(new.value), str(new.value)) == (type(old.value), str(old.value))
        with pytest.raises(UsageError):
            query.ledger(app, office, query.Filters(level=-1), 50, None)

    def test_a_case_opened_between_pages_comes_last(self, app: App) -> None:
        user = USERS[UNITS[0]]
        first, cursor, _ = query.ledger(app, user, query.Filters(), 3, None)
        before = [c["id"] for c in query.cases(app, user, query.Filters())]
        app.open_case("supervision", title="新开", lead_unit=UNITS[0], co_units=[], due="10wd", values={}, actor="wang")
        rest, cursor2 = [], cursor
        while cursor2 is not None:
            page, cursor2, _ = query.ledger(app, user, query.Filters(), 3, cursor2)
            rest += [c["id"] for c in page]
        shown = [c["id"] for c in first] + rest
        assert shown[:-1] == before and shown[-1] > before[-1]


class TestTodoInSql:
    def test_the_to_do_is_what_every_case_checked_gives(self, app: App) -> None:
        """Every open case the person sees, each checked for a step of theirs (today's rule)."""
        everything = app.list_cases()
        for user in [*USERS.values(), User("li", "leader", None)]:
            expected = query.lines(app, user, [c for c in everything if c["closed_at"] is None
                                               and scope.sees(user, c)], todo=True)
            got = query.todo(app, user)
            assert [(line.case, line.actions) for line in got] == [(line.case, line.actions) for line in expected]
        office = query.todo(app, USERS["office"])
        assert any(line.case["suspended"] for line in office) or not any(
            c["suspended"] for c in everything)

    def test_to_do_done_and_co_handled_page_in_the_boards_order(self, app: App) -> None:
        """On both databases (julianday / timestamptz for the order): every page size walks the
        same cases in the board's order as the whole list sorted by nearest running deadline."""
        everything = app.list_cases()
        for user in [*USERS.values(), User("li", "leader", None)]:
            todo = [line.case["id"] for line in query.lines(app, user, [
                c for c in everything if c["closed_at"] is None and scope.sees(user, c)], todo=True)]
            expected = {query.todo_page: todo, query.done_page: _due_order(_brute_done(app, user, everything)),
                        query.co_handled_page: _due_order(_brute_co(user, everything))}
            for paged, ids in expected.items():
                for limit in (1, 4, 50):
                    assert walk_pages(app, paged, user, limit, len(everything))[0] == ids, (user, paged, limit)



class TestRandomOffices:
    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(specs=case_specs, steps=walks, f=filters, who=st.sampled_from(sorted(USERS)))
    def test_sql_pages_are_the_brute_force_filter(self, specs: list[tuple[str, int, int, str]],
                                                  steps: list[tuple[int, int]], f: query.Filters, who: str) -> None:
        """Random offices (as tests/integration/test_reads_match_brute_force.py builds them): the
        ledger's SQL pages of 2 hold exactly the cases the filter names, in id order, a case
        opened between two pages coming last if at all."""
        with tempfile.TemporaryDirectory() as folder:
            app = _office(folder, specs, steps)
            try:
                cases = _every_case(app)
                user = USERS[who]
                expected = _brute_ledger(user, f, cases)
                shown: list[int] = []
                cursor = None
                while True:
                    page, cursor, total = query.ledger(app, user, f, 2, cursor, count=True)
                    shown += [c["id"] for c in page]
                    if cursor is None:
                        break
                    if len(shown) == 2:
                        assert total == len(expected)
                        app.open_case("supervision", title="供暖改造", lead_unit=UNITS[0], co_units=[], due="10wd",
                                      values={}, actor="wang")
                assert shown == sorted(set(shown))
                assert [i for i in shown if i <= len(cases)] == expected
                assert len([i for i in shown if i > len(cases)]) <= 1
            finally:
                app.db.dispose()
