"""The to-do list, 已办, 协办, the ledger and `case list --overdue --unit` return exactly what
a brute-force filter over the same cases returns, on random small offices (issue 16).

Each example opens a few cases of random workflows, units and titles, walks them a few
random steps (with the clock moved on and `tick` run, so some are overdue and escalated),
then compares each read with the cases read one by one (`App.show`) and filtered in plain
Python by the rules the board states (SPEC §12, §13). Each list is read page by page, with
a case opened between two pages: no page repeats or skips a case, the to-do, 已办 and 协办
in the board's order (nearest running deadline first, none running last, then by id).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duban.access.service import User
from duban.clock import ManualClock
from duban.engine.timeliness import lead_only
from duban.errors import DubanError
from duban.service.app import App
from duban.storage.database import Database
from duban.web import query, scope

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 9, 1, 9, 0, tzinfo=TZ)
UNITS = ("区发改局", "区财政局", "区住建局")
WORKFLOWS = ("supervision", "complaint", "rectification", "opinion", "proposal")
TITLES = ("供暖改造", "老旧小区改造", "噪声扰民", "供暖收费")
SKIPPED = frozenset({"suspend", "resume", "request_extension", "approve_extension", "refuse_extension"})
USERS = {"office": User("wang", "office", None), **{u: User(f"{u}联络员", "unit", u) for u in UNITS}}

case_specs = st.lists(st.tuples(st.sampled_from(WORKFLOWS), st.integers(0, 2), st.integers(0, 3),
                                st.sampled_from(TITLES)), min_size=1, max_size=6)
walks = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 9)), max_size=3)
filters = st.builds(query.Filters, workflow=st.none() | st.sampled_from(WORKFLOWS),
                    unit=st.none() | st.sampled_from(UNITS), overdue=st.none() | st.booleans(),
                    level=st.none() | st.integers(0, 5), q=st.none() | st.sampled_from(("供暖", "改造", "扰")))


def staffed_office(url: str) -> App:
    """A new office at START: the three units, their liaisons, the office user and a leader."""
    app = App(Database(url), ManualClock(START), TZ)
    app.init()
    for u in UNITS:
        app.add_unit(u)
    for user in USERS.values():
        app.add_user(user.name, user.role, user.unit)
    app.add_user("li", "leader", None)
    return app


@contextlib.contextmanager
def random_office(specs: list[tuple[str, int, int, str]], steps: list[tuple[int, int]]
                  ) -> Iterator[tuple[App, list[dict[str, Any]]]]:
    """A random office on a file of its own, and its cases as read one at a time."""
    with tempfile.TemporaryDirectory() as folder:
        app = _office(folder, specs, steps)
        try:
            yield app, _every_case(app)
        finally:
            app.db.dispose()


def _office(folder: str, specs: list[tuple[str, int, int, str]], steps: list[tuple[int, int]]) -> App:
    app = staffed_office(f"sqlite:///{Path(folder) / 'office.db'}")
    clock = app.clock
    assert isinstance(clock, ManualClock)
    for wf, lead, co, title in specs:
        co_units = [UNITS[co]] if co < 3 and co != lead else []
        app.open_case(wf, title=title, lead_unit=UNITS[lead], co_units=co_units,
                      due="10wd" if wf in ("supervision", "rectification") else None, values={}, actor="wang")
    for days, pick in steps:
        clock.advance(days=days)
        app.tick()
        for c in app.list_cases():
            _step(app, c, pick)
    return app


def _step(app: App, case: dict[str, Any], pick: int) -> None:
    """Fire the pick-th human trigger the case allows now (as someone allowed to)."""
    allowed = [t for t in case["allowed_triggers"] if t["trigger"] not in SKIPPED and set(t["roles"]) - {"system"}]
    if not allowed or case["closed_at"] is not None:
        return
    t = allowed[pick % len(allowed)]
    actor = (USERS[case["lead_unit"]].name if "unit" in t["roles"] else "wang" if "office" in t["roles"] else "li")
    values = {"measure": "诫勉谈话"} if t["trigger"] == "hold_accountable" else \
        {"satisfied": "yes" if pick % 2 else "no"} if t["trigger"] in ("revisit", "feedback") else \
        {"unit": case["lead_unit"]} if t["trigger"] == "dispatch" else {}
    with contextlib.suppress(DubanError):  # a guard said no: the office goes on
        app.fire(case["id"], t["trigger"], actor=actor, note="按要求办理", values=values)


def _every_case(app: App) -> list[dict[str, Any]]:
    """The cases read one at a time: what the brute force filters."""
    found = []
    case_id = 1
    while True:
        try:
            found.append(app.show(case_id))
        except DubanError:
            return found
        case_id += 1


def _brute_todo(app: App, user: User, cases: list[dict[str, Any]]) -> dict[int, set[str]]:
    out = {}
    for c in cases:
        if c["closed_at"] is not None or not scope.sees(user, c):
            continue
        co_unit = user.role == "unit" and user.unit != c["lead_unit"]
        wf = scope.workflow_of(app, c["id"])
        mine = {t["trigger"] for t in c["allowed_triggers"] if user.role in t["roles"] and t["trigger"] not in scope.OPTIONAL
                and not (co_unit and lead_only(wf, c["state"], t["trigger"]))}
        if mine:
            out[c["id"]] = mine
    return out


def _brute_ledger(user: User, f: query.Filters, cases: list[dict[str, Any]]) -> list[int]:
    needle = (f.q or "").casefold()
    return [c["id"] for c in cases if scope.sees(user, c)
            and (f.workflow is None or c["workflow"] == f.workflow)
            and (f.unit is None or f.unit == c["lead_unit"] or f.unit in c["co_units"])
            and (f.overdue is None or c["overdue"] == f.overdue)
            and (f.level is None or c["escalation_level"] == f.level)
            and needle in c["title"].casefold()]


def _due_order(cases: list[dict[str, Any]]) -> list[int]:
    """Ids in the board's order: the nearest running deadline of an open case, none last, then id."""
    def key(c: dict[str, Any]) -> tuple[int, datetime | None, int]:
        running = [datetime.fromisoformat(d["due_at"]) for d in c["deadlines"] if d["status"] == "running"] \
            if c["closed_at"] is None else []
        return (0, min(running), c["id"]) if running else (1, None, c["id"])
    return [c["id"] for c in sorted(cases, key=lambda c: (key(c)[0], key(c)[1] or START, key(c)[2]))]


def _brute_done(app: App, user: User, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cases if scope.sees(user, c) and any(e["actor"] == user.name for e in app.history(c["id"]))]


def _brute_co(user: User, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cases if user.role == "unit" and c["closed_at"] is None and user.unit in c["co_units"]]


def walk_pages(app: App, paged: Any, user: User, limit: int, known: int) -> tuple[list[int], dict[int, set[str]]]:
    """Every page of `paged` (`query.todo_page` …), `limit` a page, a case opened (for the
    user's unit, so it may be on the list) after the first page: the ids shown in order, and
    the actions shown with each. Asserts no id is shown twice and the new cases at most once."""
    shown: list[int] = []
    actions: dict[int, set[str]] = {}
    cursor = None
    while True:
        lines, key = paged(app, user, cursor, limit)
        assert len(lines) <= limit
        shown += [line.case["id"] for line in lines]
        actions.update({line.case["id"]: {a.trigger for a in line.actions} for line in lines})
        if key is None:
            break
        assert lines, "a page with a next page is never empty"
        cursor = key
        if len(shown) <= limit:  # between the first two pages: another case comes in
            app.open_case("complaint", title="噪声扰民", lead_unit=user.unit or UNITS[0], co_units=[],
                          due=None, values={}, actor="wang")
    assert len(shown) == len(set(shown)), shown
    return [i for i in shown if i <= known], actions


class TestReadsMatchBruteForce:
    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(specs=case_specs, steps=walks, who=st.sampled_from(sorted(USERS)), limit=st.integers(1, 3))
    def test_to_do_done_and_co_handled_pages_are_the_brute_force_in_the_boards_order(
            self, specs: list[tuple[str, int, int, str]], steps: list[tuple[int, int]], who: str, limit: int) -> None:
        """Read a page at a time while cases are opened between pages: the to-do holds exactly
        the open cases the person sees with a step of theirs (with those steps), 已办 the cases
        they acted on, 协办 the open cases their unit co-handles, each in the board's order,
        none skipped or repeated."""
        with random_office(specs, steps) as (app, cases):
            user = USERS[who]
            by_id = {c["id"]: c for c in cases}
            todo = _brute_todo(app, user, cases)
            shown, actions = walk_pages(app, query.todo_page, user, limit, len(cases))
            assert shown == _due_order([by_id[i] for i in todo])
            assert {i: actions[i] for i in shown} == todo
            done = _brute_done(app, user, cases)
            assert walk_pages(app, query.done_page, user, limit, len(cases))[0] == _due_order(done)
            co = _brute_co(user, cases)
            assert walk_pages(app, query.co_handled_page, user, limit, len(cases))[0] == _due_order(co)


    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(specs=case_specs, steps=walks, f=filters, who=st.sampled_from(sorted(USERS)))
    def test_to_do_ledger_and_overdue_list_are_the_brute_force_filter(
            self, specs: list[tuple[str, int, int, str]], steps: list[tuple[int, int]], f: query.Filters,
            who: str) -> None:
        """For a random office and a random person and filter: the to-do holds exactly the open
        cases they see with a step of theirs to take (with those steps), the ledger's pages
        exactly the cases the filter names in id order, and the overdue list of each unit
        exactly its overdue cases."""
        with random_office(specs, steps) as (app, cases):
            user = USERS[who]
            todo, _ = query.todo_page(app, user, None, 1000)
            assert {line.case["id"]: {a.trigger for a in line.actions} for line in todo} == \
                _brute_todo(app, user, cases)
            expected = _brute_ledger(user, f, cases)
            shown, cursor = [], None
            while True:
                page, cursor = query.page(query.cases(app, user, f), 2, cursor)
                shown += [c["id"] for c in page]
                if cursor is None:
                    break
                if len(shown) == 2:  # a case opened between two pages: it comes last, if at all
                    app.open_case("supervision", title="供暖改造", lead_unit=UNITS[0], co_units=[], due="10wd",
                                  values={}, actor="wang")
            assert shown == sorted(set(shown))  # nothing repeated, in id order
            late = [i for i in shown if i > len(cases)]
            assert [i for i in shown if i <= len(cases)] == expected
            assert len(late) <= 1
            for unit in UNITS:
                listed = [c["id"] for c in app.list_cases(unit=unit, overdue=True)]
                assert listed == [c["id"] for c in cases if c["overdue"]
                                  and unit in (c["lead_unit"], *c["co_units"])]
