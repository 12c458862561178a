"""The working-day calendar: counting rules, unknown years, and properties over 2005-2026."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from duban.engine.calendar import WorkingCalendar
from duban.exports.calendar_files import seed_from_chinesecalendar

SEED = seed_from_chinesecalendar()
CAL = WorkingCalendar.from_days(((d.day, d.kind) for d in SEED.days), SEED.years)
HOLIDAYS = frozenset(d.day for d in SEED.days if d.kind == "holiday")

# Starts far enough inside 2005-2026 that 40 working days either way stay in known years.
starts = st.dates(min_value=date(2005, 3, 1), max_value=date(2026, 9, 30))
counts = st.integers(min_value=1, max_value=40)


def naive_working_days(after: date, up_to: date) -> int:
    """Working days d with after < d <= up_to, counted one by one (the test oracle)."""
    days = (after + timedelta(days=i) for i in range(1, (up_to - after).days + 1))
    return sum(CAL.is_working_day(d) for d in days)


class TestWorkedExamples:
    def test_spec_national_day_2026(self) -> None:
        """SPEC §5.3: 2026-09-30 + 5wd skips Oct 1-7 and counts make-up Saturday Oct 10."""
        assert CAL.add_working_days(date(2026, 9, 30), 5) == (date(2026, 10, 13), False)

    def test_spring_festival_2026_counts_makeup_saturday(self) -> None:
        """DOMAIN §1.3: Fri 2026-02-13 + 5wd is Fri 2026-02-27 (Sat 2/14 is day 1)."""
        assert CAL.add_working_days(date(2026, 2, 13), 5) == (date(2026, 2, 27), False)

    def test_national_day_2025(self) -> None:
        """DOMAIN §1.3: Tue 2025-09-30 + 5wd is Tue 2025-10-14."""
        assert CAL.add_working_days(date(2025, 9, 30), 5) == (date(2025, 10, 14), False)

    def test_start_on_rest_day_is_not_counted(self) -> None:
        """DOMAIN §1.3: a case received on Sat 2026-03-07 has Mon 2026-03-09 as day 1."""
        assert CAL.add_working_days(date(2026, 3, 7), 1) == (date(2026, 3, 9), False)

    def test_zero_returns_start(self) -> None:
        """n = 0 is the start day itself, even a rest day."""
        assert CAL.add_working_days(date(2026, 10, 1), 0) == (date(2026, 10, 1), False)

    def test_backwards_over_holiday(self) -> None:
        """One working day before Thu 2026-10-08 is Wed 2026-09-30 (Oct 1-7 are off)."""
        assert CAL.add_working_days(date(2026, 10, 8), -1) == (date(2026, 9, 30), False)


class TestIsWorkingDay:
    @pytest.mark.parametrize(
        ("day", "working"),
        [
            (date(2026, 10, 1), False),  # 国庆, a Thursday
            (date(2026, 10, 10), True),  # 调休 make-up Saturday
            (date(2026, 10, 11), False),  # plain Sunday
            (date(2026, 10, 12), True),  # plain Monday
            (date(2027, 1, 1), True),  # 元旦 2027, but 2027 has no data: weekends only
            (date(2027, 1, 2), False),  # Saturday of an unknown year
        ],
    )
    def test_examples(self, day: date, working: bool) -> None:
        """Make-up days work, holidays do not, otherwise Monday to Friday."""
        assert CAL.is_working_day(day) is working

    def test_agrees_with_chinesecalendar_every_day(self) -> None:
        """Every day 2004-2026 matches chinese_calendar.is_workday (an independent oracle)."""
        chinese_calendar = pytest.importorskip("chinese_calendar")
        day = date(2004, 1, 1)
        while day <= date(2026, 12, 31):
            assert CAL.is_working_day(day) is chinese_calendar.is_workday(day), day
            day += timedelta(days=1)

    def test_known_years(self) -> None:
        """The seed covers 2004-2026 and nothing later."""
        assert CAL.is_known(2004)
        assert CAL.is_known(2026)
        assert not CAL.is_known(2027)


class TestUnknownYear:
    def test_case_opened_end_of_2026_runs_into_2027(self) -> None:
        """2026-12-28 + 5wd counts 2027 by weekends only: Jan 4, flagged approximate."""
        assert CAL.add_working_days(date(2026, 12, 28), 5) == (date(2027, 1, 4), True)

    def test_within_known_year_is_exact(self) -> None:
        """2026-12-01 + 5wd never leaves 2026, so it is not approximate."""
        assert CAL.add_working_days(date(2026, 12, 1), 5) == (date(2026, 12, 8), False)

    def test_backwards_from_unknown_year(self) -> None:
        """Counting back from 2027 examines 2027 days, so it is approximate."""
        assert CAL.add_working_days(date(2027, 1, 5), -2) == (date(2027, 1, 1), True)

    def test_roll_into_unknown_year(self) -> None:
        """Rolling Sat 2027-01-02 forward lands on Mon 2027-01-04, approximate."""
        assert CAL.roll_to_working_day(date(2027, 1, 2)) == (date(2027, 1, 4), True)

    def test_between_across_year_end(self) -> None:
        """A span reaching into 2027 is approximate; one inside 2026 is not."""
        assert CAL.working_days_between(date(2026, 12, 28), date(2027, 1, 4)) == (5, True)
        assert CAL.working_days_between(date(2026, 12, 1), date(2026, 12, 8)) == (5, False)

    def test_engine_never_imports_chinesecalendar(self) -> None:
        """The engine modules load without chinese_calendar or any storage code."""
        code = (
            "import sys, duban.engine.calendar, duban.engine.deadlines; "
            "bad = {'chinese_calendar', 'duban.storage'} & set(sys.modules); "
            "sys.exit(', '.join(sorted(bad)) or None)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], check=False, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr


class TestRollAndBetween:
    def test_roll_keeps_working_day(self) -> None:
        """A working day rolls to itself, including a make-up Saturday."""
        assert CAL.roll_to_working_day(date(2026, 10, 10)) == (date(2026, 10, 10), False)

    def test_roll_over_holiday_block(self) -> None:
        """Thu 2026-10-01 rolls past the National Day break to Thu 2026-10-08."""
        assert CAL.roll_to_working_day(date(2026, 10, 1)) == (date(2026, 10, 8), False)

    def test_between_empty_span(self) -> None:
        """An end on or before the start gives 0."""
        assert CAL.working_days_between(date(2026, 3, 9), date(2026, 3, 9)) == (0, False)
        assert CAL.working_days_between(date(2026, 3, 9), date(2026, 3, 1)) == (0, False)

    @given(
        st.dates(min_value=date(2004, 1, 1), max_value=date(2028, 12, 31)),
        st.integers(min_value=0, max_value=800),
    )
    def test_between_matches_day_by_day_count(self, start: date, length: int) -> None:
        """The arithmetic count equals counting the days one by one, in any year."""
        end = start + timedelta(days=length)
        count, approximate = CAL.working_days_between(start, end)
        assert count == naive_working_days(start, end)
        touches_unknown = length > 0 and end.year > 2026
        assert approximate is touches_unknown

    @given(st.dates(min_value=date(2005, 1, 1), max_value=date(2026, 12, 20)))
    def test_roll_lands_on_first_working_day(self, day: date) -> None:
        """Rolling gives a working day with no working day between it and the start."""
        rolled, approximate = CAL.roll_to_working_day(day)
        assert CAL.is_working_day(rolled)
        assert not approximate
        assert naive_working_days(day - timedelta(days=1), rolled - timedelta(days=1)) == 0


class TestFromDays:
    def test_later_entry_replaces_earlier(self) -> None:
        """An office override listed after the national schedule wins."""
        cal = WorkingCalendar.from_days(
            [(date(2026, 10, 1), "holiday"), (date(2026, 10, 1), "workday")], [2026]
        )
        assert cal.is_working_day(date(2026, 10, 1))
        assert date(2026, 10, 1) not in cal.holidays

    def test_unknown_kind_is_refused(self) -> None:
        """A kind other than holiday/workday is a programming error."""
        with pytest.raises(ValueError, match="allowed: holiday, workday"):
            WorkingCalendar.from_days([(date(2026, 10, 1), "off")], [2026])

    def test_workday_wins_over_holiday_in_both_sets(self) -> None:
        """A day in both sets counts as working, in lookups and in spans alike."""
        day = date(2026, 10, 1)
        cal = WorkingCalendar(frozenset({day}), frozenset({day}), frozenset({2026}))
        assert cal.is_working_day(day)
        assert cal.working_days_between(date(2026, 9, 30), day) == (1, False)

    def test_equality_ignores_derived_caches(self) -> None:
        """Two calendars built from the same days compare equal."""
        again = WorkingCalendar.from_days(((d.day, d.kind) for d in SEED.days), SEED.years)
        assert again == CAL


class TestAddWorkingDaysProperties:
    @given(starts, counts)
    def test_lands_on_working_day_never_on_holiday(self, start: date, n: int) -> None:
        """The result is a working day, never a holiday of the year's notice, and exact."""
        day, approximate = CAL.add_working_days(start, n)
        assert CAL.is_working_day(day)
        assert day not in HOLIDAYS
        assert not approximate

    @given(starts, counts)
    def test_strictly_monotonic(self, start: date, n: int) -> None:
        """One more working day always gives a later day."""
        assert CAL.add_working_days(start, n)[0] < CAL.add_working_days(start, n + 1)[0]
        assert CAL.add_working_days(start, -n)[0] > CAL.add_working_days(start, -n - 1)[0]

    @given(starts, counts)
    def test_counts_exactly_n(self, start: date, n: int) -> None:
        """Exactly n-1 working days lie strictly between the start and the result."""
        day, _ = CAL.add_working_days(start, n)
        assert naive_working_days(start, day - timedelta(days=1)) == n - 1
        assert CAL.working_days_between(start, day) == (n, False)

    @given(starts, counts)
    def test_negative_mirrors_positive(self, start: date, n: int) -> None:
        """Counting back lands on a working day with n-1 working days strictly between."""
        day, approximate = CAL.add_working_days(start, -n)
        assert day < start
        assert CAL.is_working_day(day)
        assert day not in HOLIDAYS
        assert not approximate
        assert naive_working_days(day, start - timedelta(days=1)) == n - 1

    @given(starts, counts)
    def test_back_and_forth_returns_to_a_working_start(self, start: date, n: int) -> None:
        """From a working day, n back then n forward is the same day."""
        assume(CAL.is_working_day(start))
        back, _ = CAL.add_working_days(start, -n)
        assert CAL.add_working_days(back, n) == (start, False)
