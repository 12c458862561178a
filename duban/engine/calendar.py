"""The working-day calendar: which days count as 工作日 (SPEC §5.3, DOMAIN §1.2).

A working day is Monday to Friday, minus the statutory holidays of the State Council's
yearly notice, plus its make-up working days (调休上班日). The calendar is plain data
handed in by the caller (seeded from ``chinesecalendar`` and imported notices); this
module never reads files, the database or the ``chinese_calendar`` package, so it keeps
working for a year nobody has published yet.

For a year outside ``known_years`` the calendar counts weekends only and every answer
that looked at such a day says so with an ``approximate`` flag (SPEC §5.4: neither crash
nor silently pretend).

Every counting method follows the Civil Code (民法典 §201): the start day is never
counted, so "N working days after X" is the N-th working day strictly after X.

A case received on a rest day (SPEC §16) is counted one of two ways, as the office's
settings say (``calendar: {rest_day_start: …}``): `DAY_ONE` (the default, 民法典 §201: the
first working day after the start is day 1) or `DEEMED_NEXT_WORKING_DAY` (received on a
rest day = received on the next working day, which is then not counted; what
``chinese_calendar.find_workday`` computes). Only `period_end` reads it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

_ONE_DAY = timedelta(days=1)
DAY_ONE = "day_one"
DEEMED_NEXT_WORKING_DAY = "deemed_next_working_day"
REST_DAY_STARTS = (DAY_ONE, DEEMED_NEXT_WORKING_DAY)
_HOLIDAY = "holiday"
_WORKDAY = "workday"


@dataclass(frozen=True)
class WorkingCalendar:
    """Holidays and make-up working days, with the years whose schedule is loaded.

    When a day is in both sets, ``workdays`` wins.

    Attributes:
        holidays: days off by the official schedule (weekdays or weekends).
        workdays: make-up working days (调休上班日), usually a Saturday or Sunday.
        known_years: years whose official schedule is loaded; other years are counted
            with weekends only and flagged approximate.
        rest_day_start: how `period_end` counts from a rest day (module docstring).
    """

    holidays: frozenset[date]
    workdays: frozenset[date]
    known_years: frozenset[int]
    rest_day_start: str = DAY_ONE
    # Sorted ordinals of the days that differ from the plain Mon-Fri rule, so that
    # `working_days_between` can count a long span with two bisections, not a day loop.
    _weekdays_off: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _weekends_on: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Derive the sorted exception lists once, when the calendar is built."""
        weekdays_off = sorted(
            d.toordinal() for d in self.holidays - self.workdays if d.weekday() < 5
        )
        weekends_on = sorted(d.toordinal() for d in self.workdays if d.weekday() >= 5)
        # Frozen dataclass: derived caches have to bypass the generated __setattr__.
        object.__setattr__(self, "_weekdays_off", tuple(weekdays_off))
        object.__setattr__(self, "_weekends_on", tuple(weekends_on))

    @classmethod
    def from_days(
        cls, days: Iterable[tuple[date, str]], known_years: Iterable[int], rest_day_start: str = DAY_ONE
    ) -> WorkingCalendar:
        """Build a calendar from ``(day, kind)`` pairs.

        A later pair for the same day replaces an earlier one, so an office's local
        overrides can simply be listed after the national schedule.

        Args:
            days: pairs of a day and its kind, ``"holiday"`` or ``"workday"``.
            known_years: years whose official schedule ``days`` contains in full.
            rest_day_start: `DAY_ONE` or `DEEMED_NEXT_WORKING_DAY` (module docstring).

        Returns:
            The calendar.

        Raises:
            ValueError: a kind other than ``"holiday"`` or ``"workday"``, or an unknown
                ``rest_day_start``.
        """
        if rest_day_start not in REST_DAY_STARTS:
            raise ValueError(f"rest_day_start {rest_day_start!r} (allowed: {', '.join(REST_DAY_STARTS)})")
        kinds: dict[date, str] = {}
        for day, kind in days:
            if kind not in (_HOLIDAY, _WORKDAY):
                raise ValueError(f"{day}: unknown kind {kind!r} (allowed: holiday, workday)")
            kinds[day] = kind
        return cls(
            holidays=frozenset(d for d, k in kinds.items() if k == _HOLIDAY),
            workdays=frozenset(d for d, k in kinds.items() if k == _WORKDAY),
            known_years=frozenset(known_years),
            rest_day_start=rest_day_start,
        )

    def is_known(self, year: int) -> bool:
        """Whether the official schedule of ``year`` is loaded."""
        return year in self.known_years

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day.

        A listed make-up day works, a listed holiday does not, any other day works if it
        is Monday to Friday. In a year without data nothing is listed, so that is the
        weekends-only rule.
        """
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: date, n: int) -> tuple[date, bool]:
        """The ``n``-th working day after (``n > 0``) or before (``n < 0``) ``start``.

        ``start`` itself is never counted, also when it is a rest day (DOMAIN §1.3:
        a case received on Saturday has Monday as day 1). ``n == 0`` returns ``start``
        unchanged without looking at the calendar.

        Args:
            start: the day the period is counted from.
            n: how many working days to move; the sign gives the direction.

        Returns:
            The day, and whether any day examined lies in a year without data.
        """
        step = _ONE_DAY if n > 0 else -_ONE_DAY
        remaining = abs(n)
        day = start
        approximate = False
        while remaining:
            day += step
            if day.year not in self.known_years:
                approximate = True
            if self.is_working_day(day):
                remaining -= 1
        return day, approximate

    def period_end(self, received: date, n: int) -> tuple[date, bool]:
        """The last day of an ``n``-working-day period (``n > 0``) for something received on
        ``received``: `add_working_days`, from the next working day when ``received`` is a
        rest day and the office deems it received then (`DEEMED_NEXT_WORKING_DAY`).

        Returns:
            The day, and whether any day examined lies in a year without data.
        """
        if self.rest_day_start == DEEMED_NEXT_WORKING_DAY and n > 0:
            start, rolled_approximate = self.roll_to_working_day(received)
            last, approximate = self.add_working_days(start, n)
            return last, approximate or rolled_approximate
        return self.add_working_days(received, n)

    def roll_to_working_day(self, day: date) -> tuple[date, bool]:
        """``day`` if it is a working day, else the next working day (民法典 §203).

        Returns:
            The day, and whether any day examined lies in a year without data.
        """
        approximate = False
        while True:
            if day.year not in self.known_years:
                approximate = True
            if self.is_working_day(day):
                return day, approximate
            day += _ONE_DAY

    def working_days_between(self, start: date, end: date) -> tuple[int, bool]:
        """How many working days ``d`` satisfy ``start < d <= end``.

        Used for spans that may be long (a suspension lasting months), hence counted
        arithmetically: weekdays in the span, minus listed weekday holidays, plus listed
        weekend make-up days.

        Returns:
            The count (0 when ``end <= start``), and whether the span touches a year
            without data.
        """
        if end <= start:
            return 0, False
        lo, hi = start.toordinal(), end.toordinal()
        count = _weekdays_up_to(hi) - _weekdays_up_to(lo)
        count -= bisect_right(self._weekdays_off, hi) - bisect_right(self._weekdays_off, lo)
        count += bisect_right(self._weekends_on, hi) - bisect_right(self._weekends_on, lo)
        first_year = (start + _ONE_DAY).year
        approximate = any(year not in self.known_years for year in range(first_year, end.year + 1))
        return count, approximate


def _weekdays_up_to(ordinal: int) -> int:
    """Mondays to Fridays among the proleptic ordinals ``1 .. ordinal``.

    Ordinal 1 (0001-01-01) is a Monday, so every block of 7 ordinals holds 5 weekdays
    and a partial block holds at most its first 5 days.
    """
    weeks, rest = divmod(ordinal, 7)
    return weeks * 5 + min(rest, 5)
