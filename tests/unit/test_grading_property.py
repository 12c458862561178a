"""Properties of `report units` on generated facts (SPEC §16): every row's on-time and late
counts add up to its closed cases, and no unit graded 优秀 is ever flagged 末位; the bottom
three are the lowest-ranked, widened only by ties at the cut.

The cases are built as the engine stores them (supervision cases with a sign-for and a main
deadline, met, missed, still running or closed by an accountability decision) and the
report is built by the same pure function `duban report units` calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from duban.engine.model import DONE, ENDED, Case, DeadlineState
from duban.reports import units
from duban.reports.facts import CaseView
from duban.reports.grading import DEFAULT_BANDS, grade, rank, rank_key
from duban.reports.period import Period
from duban.workflows import Catalog

UNITS = ("区发改局", "区财政局", "区市场监管局", "区教育局", "区交通运输局", "区卫健委")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=60)
WF = Catalog().latest("supervision")
TOP = DEFAULT_BANDS[0].label
hours = st.integers(min_value=1, max_value=24 * 30)


@st.composite
def cases(draw: st.DrawFn, case_id: int) -> Case:
    """One supervision case: signed (in time or late) or not, closed (verified or held
    accountable, in time or late) or still open."""
    opened = T0 + timedelta(hours=draw(st.integers(min_value=0, max_value=24 * 20)))
    sign_due, due = opened + timedelta(hours=draw(hours)), opened + timedelta(hours=draw(hours))
    signed = draw(st.none() | hours.map(lambda h: opened + timedelta(hours=h)))
    closed = draw(st.none() | hours.map(lambda h: (signed or opened) + timedelta(hours=h)))
    held = closed is not None and draw(st.booleans())
    sign_for = DeadlineState("sign_for", "1wd", opened, sign_due, False)
    main = DeadlineState("due", "2026-03-31", opened, due, False)
    if signed is not None:
        sign_for.status, sign_for.ended_at = ENDED, signed
    if closed is not None:
        main.status, main.ended_at = (ENDED if held else DONE), closed
        if signed is None:
            sign_for.status, sign_for.ended_at = ENDED, closed
    for d in (sign_for, main):
        d.missed = (d.ended_at or NOW) > d.due_at
    satisfied = draw(st.sampled_from([None, "yes", "no"])) if closed is not None else None
    return Case(
        workflow="supervision", workflow_version=WF.version,
        state="accountability" if held else "verified" if closed else "overdue" if main.missed else "in_progress",
        title="t", lead_unit=draw(st.sampled_from(UNITS)), co_units=[], opened_at=opened, opened_by="wang",
        id=case_id, due_at=due, closed_at=closed, deadlines={"sign_for": sign_for, "due": main},
        data={"satisfied": satisfied} if satisfied else {},
    )


@st.composite
def office(draw: st.DrawFn) -> list[Case]:
    count = draw(st.integers(min_value=0, max_value=20))
    return [draw(cases(i + 1)) for i in range(count)]


periods = st.sampled_from([
    Period(), Period(T0, T0 + timedelta(days=31)), Period(T0 + timedelta(days=14), T0 + timedelta(days=45)),
    Period(T0 + timedelta(days=40), None),
])


@settings(max_examples=30, deadline=None)
@given(office(), periods)
def test_on_time_plus_late_is_closed_and_excellent_units_are_never_flagged(cases: list[Case], period: Period) -> None:
    views = [CaseView(c, WF) for c in cases]
    report = units.build(views, {}, period, NOW, DEFAULT_BANDS)
    [section] = report.sections
    for row in section.rows:
        mine = [c for c in cases if c.lead_unit == row["unit"] and units.active_in(CaseView(c, WF), period)]
        closed = [c for c in mine if c.closed_at in period]
        assert row["closed_on_time"] + row["closed_late"] == row["closed"] == len(closed)
        assert row["cases"] == len(mine)
        assert not (row["grade"] == TOP and row["bottom_three"])
        assert row["bottom_three"] == (row["flag"] == units.FLAG)


@st.composite
def graded_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Rows as `units.Tally.row` makes them, with few distinct values so that ties are common."""
    rows = []
    for unit in draw(st.lists(st.sampled_from((*UNITS, "区民政局", "区司法局")), unique=True, max_size=8)):
        rate = draw(st.none() | st.sampled_from([Fraction(0), Fraction(1, 2), Fraction(3, 4), Fraction(9, 10), Fraction(1)]))
        violation = draw(st.booleans())
        rows.append({"unit": unit, "grading_rate": rate, "on_time_rate": rate, "grade": grade(rate, violation, DEFAULT_BANDS),
                     "open_overdue": draw(st.integers(0, 2)),
                     "escalations": {str(n): draw(st.integers(0, 1)) for n in (1, 2, 3, 4)}})
    return rows


@settings(max_examples=30, deadline=None)
@given(graded_rows())
def test_bottom_three_are_the_lowest_ranked_never_excellent_widened_only_by_ties(rows: list[dict[str, Any]]) -> None:
    rank(rows, DEFAULT_BANDS)
    graded = [r for r in rows if r["grade"] is not None]
    flagged = [r for r in rows if r["bottom_three"]]
    assert all(r["grade"] is not None and r["grade"] != TOP for r in flagged)
    if len(graded) <= 3:
        assert flagged == []
        return
    keys = sorted(rank_key(r, DEFAULT_BANDS) for r in graded)
    cut = keys[-3]
    for r in graded:  # exactly the non-top rows at or below the cut
        assert r["bottom_three"] == (rank_key(r, DEFAULT_BANDS) >= cut and r["grade"] != TOP)
    beyond_three = [r for r in flagged if rank_key(r, DEFAULT_BANDS) == cut]
    assert len(flagged) <= 3 or len(beyond_three) > 1  # more than three only when tied at the cut
