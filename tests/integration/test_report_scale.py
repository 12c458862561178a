"""The period reports read only their period's cases, and say exactly what they said when
they read every case of the office (issue 16).

Each example runs a random small office through a few weeks — cases opened on different
days, walked random steps, `tick` run as the clock moves on, so cases open, close, fall
overdue, escalate and are held accountable at different times — then, for random periods,
compares `report units` and `report bulletin` (through `Reviews`, reading a period's cases
a batch at a time, with batches of two so every report takes several) with the same
builders fed every case of the office and every escalation and decision, as before.
"""

from __future__ import annotations

import contextlib
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, event, or_, select

from duban.clock import ManualClock
from duban.errors import DubanError
from duban.present.render import report_json
from duban.reports import Report, bulletin, grading, units
from duban.reports.facts import HOLD, RUNG_ACTIONS, CaseView, Events
from duban.reports.period import Period, containing, parse_period
from duban.service.app import App
from duban.service.reviews import Reviews
from duban.storage import listing, report_reads
from duban.storage.database import Database
from duban.storage.tables import AUDIT

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 9, 1, 9, 0, tzinfo=TZ)
UNITS = ("区发改局", "区财政局", "区住建局", "区水务局")
WORKFLOWS = ("supervision", "complaint", "rectification", "opinion", "proposal")
SKIPPED = frozenset({"suspend", "resume", "request_extension", "approve_extension", "refuse_extension"})
LIAISON = {u: f"{u}联络员" for u in UNITS}

days = st.lists(st.tuples(st.integers(0, 12), st.lists(st.tuples(st.sampled_from(WORKFLOWS), st.integers(0, 3)),
                                                        max_size=3), st.integers(0, 9)), min_size=1, max_size=6)
periods = st.lists(st.tuples(st.sampled_from(("week", "month", "quarter", "span", "since", "until", "all")),
                             st.integers(-10, 80), st.integers(1, 40)), min_size=1, max_size=4)


def _office(url: str, plan: list[tuple[int, list[tuple[str, int]], int]]) -> App:
    """An office walked through ``plan``: each day the clock moves on, the timers fire, cases
    are opened and every open case takes a (random) step."""
    app = App(Database(url), ManualClock(START), TZ)
    app.init()
    for u in UNITS:
        app.add_unit(u)
        app.add_user(LIAISON[u], "unit", u)
    app.add_user("wang", "office", None)
    app.add_user("li", "leader", None)
    clock = app.clock
    assert isinstance(clock, ManualClock)
    for n, (gap, opened, pick) in enumerate(plan):
        clock.advance(days=gap, hours=n)
        app.tick()
        for wf, lead in opened:
            app.open_case(wf, title=f"案件{n}", lead_unit=UNITS[lead], co_units=[UNITS[(lead + 1) % 4]],
                          due="10wd" if wf in ("supervision", "rectification") else None, values={}, actor="wang")
        for c in app.list_cases():
            if c["closed_at"] is None:
                _step(app, c, pick + c["id"])
    clock.advance(days=3)
    app.tick()
    return app


def _step(app: App, case: dict[str, Any], pick: int) -> None:
    allowed = [t for t in case["allowed_triggers"] if t["trigger"] not in SKIPPED and set(t["roles"]) - {"system"}]
    if not allowed:
        return
    t = allowed[pick % len(allowed)]
    actor = LIAISON[case["lead_unit"]] if "unit" in t["roles"] else "wang" if "office" in t["roles"] else "li"
    values = {"measure": "诫勉谈话"} if t["trigger"] == "hold_accountable" else \
        {"satisfied": "yes" if pick % 2 else "no"} if t["trigger"] in ("revisit", "feedback") else \
        {"unit": case["lead_unit"]} if t["trigger"] == "dispatch" else {}
    with contextlib.suppress(DubanError):  # a guard said no: the office goes on
        app.fire(case["id"], t["trigger"], actor=actor, note="按要求办理", values=values)


def _period(kind: str, offset: int, length: int) -> tuple[Period, str | None, date]:
    """A period ``offset`` days from START (a bulletin's kind, or bounds as --since/--until)."""
    day = (START + timedelta(days=offset)).date()
    if kind in ("week", "month", "quarter"):
        return containing(kind, day, TZ), kind, day
    since = day.isoformat() if kind in ("span", "since") else None
    until = (day + timedelta(days=length)).isoformat() if kind in ("span", "until") else None
    return parse_period(since, until, TZ), None, day


def _every_case(app: App, conn: Connection) -> tuple[list[CaseView], Events]:
    """What the reports read before issue 16: every case, every escalation and decision."""
    views = [CaseView(c, app.workflow_of(conn, c)) for c in listing.cases(conn)]
    events: Events = {}
    for row in conn.execute(select(AUDIT).where(or_(AUDIT.c.action.in_(RUNG_ACTIONS), AUDIT.c.trigger == HOLD))
                            .order_by(AUDIT.c.seq)):
        events.setdefault(row.case_id, []).append(dict(row._mapping))
    return views, events


def _same(new: Report, old: Report) -> None:
    assert report_json(new, TZ) == report_json(old, TZ)
    assert new == old


def _compare(app: App, specs: list[tuple[str, int, int]]) -> None:
    reviews, now = Reviews(app), app.clock.now()
    for kind, offset, length in specs:
        period, bulletin_kind, day = _period(kind, offset, length)
        with app.db.read() as conn:
            views, events = _every_case(app, conn)
            read = [c.id for batch in report_reads.period_cases(conn, period.start, period.end) for c in batch]
        # the period's cases, each once, and none other: opened by its end, not closed before its start
        assert sorted(read) == [v.id for v in views if (period.end is None or v.case.opened_at <= period.end)
                                and (period.start is None or v.case.closed_at is None
                                     or v.case.closed_at >= period.start)]
        _same(reviews.units(period), units.build(views, events, period, now, grading.DEFAULT_BANDS))
        if bulletin_kind is not None:
            _same(reviews.bulletin(bulletin_kind, day), bulletin.build(views, events, period, now))


class TestPeriodReportsReadTheirPeriod:
    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(plan=days, specs=periods)
    def test_units_and_bulletin_are_what_every_case_gave(self, plan: list[tuple[int, list[tuple[str, int]], int]],
                                                         specs: list[tuple[str, int, int]]) -> None:
        """For a random office and random periods: the reports over the period's cases, read
        two at a time, are the reports over every case of the office (SQLite)."""
        with tempfile.TemporaryDirectory() as folder, mock.patch.object(report_reads, "BATCH", 2):
            app = _office(f"sqlite:///{Path(folder) / 'office.db'}", plan)
            try:
                _compare(app, specs)
            finally:
                app.db.dispose()

    @pytest.mark.parametrize("batch", [2, 500])
    def test_on_both_databases(self, any_db_url: str, batch: int) -> None:
        """One busy office, every kind of period, on SQLite and PostgreSQL (where the
        streamed cursor and the NULL order of the index differ)."""
        plan = [(0, [("supervision", 0), ("complaint", 1), ("rectification", 2)], 1),
                (4, [("opinion", 3), ("proposal", 0)], 2), (9, [("supervision", 1)], 3), (6, [], 4),
                (12, [("complaint", 2), ("supervision", 3)], 5), (10, [], 6), (12, [("rectification", 0)], 7)]
        with mock.patch.object(report_reads, "BATCH", batch):
            app = _office(any_db_url, plan)
            try:
                _compare(app, [(k, o, 20) for k in ("week", "month", "quarter", "span", "since", "until", "all")
                               for o in (-3, 0, 9, 25, 40, 70)])
            finally:
                app.db.dispose()

    def test_the_period_is_read_along_its_index(self, sqlite_url: str) -> None:
        """Every statement that reads a period's cases walks migration 0010's index, not the
        table (SQLite's plan; PostgreSQL's depends on its statistics, `bench reads` shows it)."""
        app = _office(sqlite_url, [(0, [("supervision", 0), ("complaint", 1)], 1), (20, [("opinion", 2)], 2)])
        sent: list[tuple[str, Any]] = []

        def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "FROM cases" in statement:
                sent.append((statement, parameters))
        event.listen(app.db.engine, "before_cursor_execute", seen)
        try:
            with mock.patch.object(report_reads, "BATCH", 1):
                Reviews(app).units(_period("span", 0, 30)[0])
                Reviews(app).bulletin("month", START.date())
        finally:
            event.remove(app.db.engine, "before_cursor_execute", seen)
        assert len(sent) == 2  # one streamed statement a report, however many batches
        with app.db.engine.connect() as conn:
            for statement, parameters in sent:
                plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
                assert "USING INDEX ix_cases_closed_at_opened_at" in plan and "SCAN" not in plan, (statement, plan)
        app.db.dispose()
