"""Periods of review: half-open spans of time in the office's zone.

Every period is ``start <= at < end``. On the command line ``--since`` starts a period and
``--until`` ends it; a bare date for ``--until`` includes that whole day, so
``--since 2027-05-01 --until 2027-05-31`` is the month of May. A bulletin's period is the
week (Monday to Sunday), month or quarter containing a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from duban.clock import parse_instant
from duban.errors import UsageError

KINDS = ("week", "month", "quarter")
_QUARTERS = ("一", "二", "三", "四")


@dataclass(frozen=True)
class Period:
    """A half-open span of instants (aware, UTC); an open end is None.

    Attributes:
        start: the first instant inside the period, or None (since the beginning).
        end: the first instant after the period, or None (up to now).
        label: how people name it (e.g. ``2027年5月``), empty when it was given as bounds.
    """

    start: datetime | None = None
    end: datetime | None = None
    label: str = ""

    def __contains__(self, at: datetime | None) -> bool:
        if at is None:
            return False
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)

    def as_of(self, now: datetime) -> datetime:
        """The instant a 'still open at the end' question is asked at: the end, or now if sooner."""
        return now if self.end is None or self.end > now else self.end

    def to_json(self, tz: tzinfo) -> dict[str, str | None]:
        return {
            "start": self.start.astimezone(tz).isoformat() if self.start else None,
            "end": self.end.astimezone(tz).isoformat() if self.end else None,
            "label": self.label or self.describe(tz),
        }

    def describe(self, tz: tzinfo) -> str:
        """The period as people read it: whole days as dates, the last day included."""
        if self.label:
            return self.label
        if self.start is None and self.end is None:
            return "全部"
        first = _show(self.start, tz, last=False) if self.start else "开始"
        last = _show(self.end, tz, last=True) if self.end else "现在"
        return f"{first} 至 {last}"


def _show(at: datetime, tz: tzinfo, *, last: bool) -> str:
    local = at.astimezone(tz)
    if local.time() != time(0):
        return f"{local:%Y-%m-%d %H:%M}" + ("（不含）" if last else "")
    return f"{local.date() - timedelta(days=1) if last else local.date()}"


def parse_period(since: str | None, until: str | None, tz: tzinfo) -> Period:
    """The period of ``--since`` / ``--until`` (ISO dates or datetimes, local when no offset).

    Raises:
        UsageError: a value that is not ISO, or a start that is not before the end.
    """
    start = _parse(since, tz, "--since", end_of_day=False) if since else None
    end = _parse(until, tz, "--until", end_of_day=True) if until else None
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since {since} is not before --until {until}: give the earlier instant as --since")
    return Period(start, end)


def _parse(text: str, tz: tzinfo, what: str, *, end_of_day: bool) -> datetime:
    instant = parse_instant(text, tz, what=what)
    if end_of_day and _is_bare_date(text):
        instant = _midnight(instant.astimezone(tz).date() + timedelta(days=1), tz)
    return instant


def _is_bare_date(text: str) -> bool:
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def containing(kind: str, day: date, tz: tzinfo) -> Period:
    """The week (Monday–Sunday), month or quarter that contains ``day``.

    Raises:
        UsageError: a kind other than week, month or quarter.
    """
    if kind == "week":
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=7)
        iso_year, week, _ = day.isocalendar()
        label = f"{iso_year}年第{week}周（{first:%m月%d日}至{last - timedelta(days=1):%m月%d日}）"
    elif kind == "month":
        first = day.replace(day=1)
        last = _add_months(first, 1)
        label = f"{day.year}年{day.month}月"
    elif kind == "quarter":
        q = (day.month - 1) // 3
        first = date(day.year, q * 3 + 1, 1)
        last = _add_months(first, 3)
        label = f"{day.year}年第{_QUARTERS[q]}季度"
    else:
        raise UsageError(f"--period {kind}: allowed periods: {', '.join(KINDS)}")
    return Period(_midnight(first, tz), _midnight(last, tz), label)


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def parse_day(text: str) -> date:
    """A ``--date`` value: an ISO date."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--date {text}: not an ISO date (e.g. 2027-05-31)") from None
    from duban.engine.deadlines import check_year

    check_year(day.year, f"--date {text}")  # a period around year 9999 would overflow (SPEC §16)
    return day
