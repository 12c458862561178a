"""Deadline rules and the arithmetic that turns them into due instants (SPEC §5.2).

Rules, as written in workflow files and on the command line (``--due``):

========================  ==================================================================
``30min``, ``5h``         exact elapsed time from the anchor; rest days count, never rolled
``3d``                    calendar days; the start day is not counted; a last day that is a
                          rest day rolls forward to the next working day (民法典 §201, §203)
``5wd``                   working days (工作日); the start day is not counted
``3mo``                   the same-numbered day N months later, or that month's last day if
                          it has none (民法典 §202); rolled forward if a rest day
``2027-05-31``            that day, not rolled
``2027-05-31T18:00``      that instant; without an offset it is in the office's zone
========================  ==================================================================

A period that ends on a day ends at 24:00 of it, stored as 23:59:59 local time, so that
"overdue" is simply ``now > due_at``. Every due instant is returned in UTC with whole
seconds.

Offsets (escalation ladders, relative to a due instant): ``0``, ``+3wd``, ``-1wd``,
``-2h``, ``+30min``, ``3d`` (no sign means ``+``).
"""

from __future__ import annotations

import calendar as _months
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal, cast

from duban.engine.calendar import WorkingCalendar
from duban.errors import UsageError

RuleUnit = Literal["min", "h", "d", "wd", "mo", "date", "datetime"]
OffsetUnit = Literal["min", "h", "d", "wd"]

RULE_FORMS = (
    "30min, 5h (exact time), 3d (calendar days), 5wd (working days), 3mo (months), "
    "2027-05-31 (a day), 2027-05-31T18:00 or 2027-05-31T18:00+08:00 (an instant)"
)
OFFSET_FORMS = "0, +30min, -2h, +3d, +3wd, -1wd (no sign means +)"
FROM_CASE = "from_case"  # a deadline whose rule is the `--due` given when the case is opened

# Instants and rules are bounded (SPEC §16 "Bad input is bounded"): a year outside these, or
# a rule longer than a century, is a usage error, never an overflow deep in date arithmetic.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2199
MAX_AMOUNT: dict[str, int] = {"min": 100 * 366 * 24 * 60, "h": 100 * 366 * 24, "d": 100 * 366, "wd": 100 * 262,
                              "mo": 100 * 12}

_END_OF_DAY = time(23, 59, 59)
_RELATIVE_RULE = re.compile(r"(\d+)(min|h|d|wd|mo)")
_OFFSET = re.compile(r"([+-]?)(\d+)(min|h|d|wd)")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[T ].+")


@dataclass(frozen=True)
class Rule:
    """A parsed deadline rule.

    Attributes:
        unit: ``min``, ``h``, ``d``, ``wd``, ``mo`` (relative, with ``amount``),
            ``date`` (with ``day``) or ``datetime`` (with ``instant``).
        amount: the positive amount of a relative rule, else 0.
        day: the day of a ``date`` rule.
        instant: the aware instant (UTC) of a ``datetime`` rule.
        text: the rule as written, for display.
    """

    unit: RuleUnit
    amount: int = 0
    day: date | None = None
    instant: datetime | None = None
    text: str = ""


@dataclass(frozen=True)
class Deadline:
    """A due instant.

    Attributes:
        due_at: aware, UTC, whole seconds.
        approximate: computed with weekends only for a year without calendar data;
            to be recomputed once that year's schedule is imported (SPEC §5.4).
    """

    due_at: datetime
    approximate: bool


@dataclass(frozen=True)
class Offset:
    """A signed distance from a due instant, for escalation ladders.

    Attributes:
        unit: ``min``, ``h``, ``d`` or ``wd``.
        amount: signed; negative means before the instant.
        text: the offset as written, for display.
    """

    unit: OffsetUnit
    amount: int
    text: str = ""


def parse_rule(text: str, tz: tzinfo) -> Rule:
    """Parse a deadline rule.

    Args:
        text: e.g. ``5wd``, ``3mo``, ``2027-05-31`` or ``2027-05-31T18:00+08:00``.
        tz: the office's zone, for an ISO datetime given without an offset.

    Returns:
        The rule.

    Raises:
        UsageError: the text is none of the allowed forms, or an amount is not a
            positive integer; the message quotes the text and lists the forms.
    """
    value = text.strip()
    relative = _RELATIVE_RULE.fullmatch(value)
    if relative:
        amount = _amount(text, relative.group(1), relative.group(2))
        if amount <= 0:
            raise _bad_rule(text, "the amount must be a positive whole number")
        return Rule(unit=cast(RuleUnit, relative.group(2)), amount=amount, text=value)
    if _DAY.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise _bad_rule(text, f"not a valid date ({str(exc)[:200]})") from None
        check_year(day.year, f"deadline rule '{text}'")
        return Rule(unit="date", day=day, text=value)
    if _INSTANT.fullmatch(value):
        try:
            instant = datetime.fromisoformat(value)
        except ValueError as exc:
            raise _bad_rule(text, f"not a valid ISO datetime ({str(exc)[:200]})") from None
        check_year(instant.year, f"deadline rule '{text}'")
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=tz)
        return Rule(unit="datetime", instant=instant.astimezone(UTC), text=value)
    raise _bad_rule(text, "unknown form")


def parse_offset(text: str) -> Offset:
    """Parse an escalation offset such as ``-1wd``, ``+3wd``, ``-2h`` or ``0``.

    Raises:
        UsageError: the text is none of the allowed forms; the message lists them.
    """
    value = text.strip()
    if value == "0":
        return Offset(unit="min", amount=0, text=value)
    match = _OFFSET.fullmatch(value)
    if not match:
        raise UsageError(f"offset '{text[:200]}' is not understood; allowed: {OFFSET_FORMS}")
    sign, digits, unit = match.groups()
    amount = _amount(text, digits, unit, what="offset")
    signed = -amount if sign == "-" else amount
    return Offset(unit=cast(OffsetUnit, unit), amount=signed, text=value)


def compute_deadline(
    rule: Rule, anchor: datetime, calendar: WorkingCalendar, tz: tzinfo
) -> Deadline:
    """The due instant of ``rule`` counted from ``anchor`` (民法典 §201-203).

    Args:
        rule: the parsed rule.
        anchor: aware instant the period starts from (e.g. the 交办 time).
        calendar: which days are working days.
        tz: the office's zone; days begin and end in it.

    Returns:
        The deadline in UTC, and whether it rests on a year without calendar data.

    Raises:
        ValueError: ``anchor`` is naive, or ``rule`` lacks its day or instant.
    """
    _require_aware(anchor)
    start = anchor.astimezone(tz).date()
    approximate = False
    match rule.unit:
        case "min" | "h":
            return Deadline(_elapsed(anchor, rule.unit, rule.amount), False)
        case "d":
            last, approximate = calendar.roll_to_working_day(start + timedelta(days=rule.amount))
        case "wd":  # a case received on a rest day: as the office's settings say (SPEC §16)
            last, approximate = calendar.period_end(start, rule.amount)
        case "mo":
            last, approximate = calendar.roll_to_working_day(_add_months(start, rule.amount))
        case "date":
            if rule.day is None:
                raise ValueError(f"rule {rule.text!r} of unit 'date' has no day")
            last = rule.day
        case "datetime":
            if rule.instant is None:
                raise ValueError(f"rule {rule.text!r} of unit 'datetime' has no instant")
            return Deadline(_utc(rule.instant), False)
    return Deadline(_utc(datetime.combine(last, _END_OF_DAY, tzinfo=tz)), approximate)


def shift(instant: datetime, offset: Offset, calendar: WorkingCalendar, tz: tzinfo) -> Deadline:
    """Move ``instant`` by ``offset``, e.g. a ladder rung "+3wd" after a due instant.

    ``min``/``h`` move by exact elapsed time. ``d`` and ``wd`` move the local date (by
    calendar days, or to the N-th working day after/before it) and keep the local time
    of day, so a rung relative to a 23:59:59 due instant also falls at 23:59:59.

    Returns:
        The shifted instant in UTC, and whether it rests on a year without data.

    Raises:
        ValueError: ``instant`` is naive.
    """
    _require_aware(instant)
    if offset.unit in ("min", "h"):
        return Deadline(_elapsed(instant, offset.unit, offset.amount), False)
    local = instant.astimezone(tz)
    if offset.unit == "d":
        day, approximate = local.date() + timedelta(days=offset.amount), False
    else:
        day, approximate = calendar.add_working_days(local.date(), offset.amount)
    moved = datetime.combine(day, local.time(), tzinfo=tz)
    return Deadline(_utc(moved), approximate)


def working_days_elapsed(
    start: datetime, end: datetime, calendar: WorkingCalendar, tz: tzinfo
) -> tuple[int, bool]:
    """Working days from ``start`` to ``end`` on local dates (start day not counted).

    Used to move ``wd`` deadlines out by the length of a suspension (SPEC §5.5).

    Returns:
        The count (0 if ``end`` is not on a later local date), and the approximate flag.
    """
    _require_aware(start)
    _require_aware(end)
    return calendar.working_days_between(start.astimezone(tz).date(), end.astimezone(tz).date())


def _add_months(day: date, months: int) -> date:
    """The same-numbered day ``months`` later, or that month's last day (民法典 §202)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = _months.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _elapsed(instant: datetime, unit: str, amount: int) -> datetime:
    """``instant`` plus exact elapsed minutes or hours, in UTC."""
    delta = timedelta(minutes=amount) if unit == "min" else timedelta(hours=amount)
    # Add in UTC: Python adds to an aware datetime in its zone's wall-clock time, which
    # would be off by an hour across a daylight-saving change in an office's zone.
    return _utc(instant.astimezone(UTC) + delta)


def _utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(microsecond=0)


def _require_aware(instant: datetime) -> None:
    # A naive instant would silently be read in the host's zone by astimezone().
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {instant.isoformat()}")


def check_year(year: int, what: str) -> None:
    """UsageError unless ``year`` lies in EARLIEST_YEAR..LATEST_YEAR (``what`` names the value)."""
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise UsageError(f"{what}: year {year} is out of range (allowed: {EARLIEST_YEAR}–{LATEST_YEAR})")


def _amount(text: str, digits: str, unit: str, what: str = "deadline rule") -> int:
    """The amount of a relative rule or offset, at most a century of its unit."""
    limit = MAX_AMOUNT[unit]
    if len(digits) > len(str(limit)) or int(digits) > limit:
        raise UsageError(f"{what} '{text[:40]}': at most {limit}{unit} (100 years)")
    return int(digits)


def _bad_rule(text: str, reason: str) -> UsageError:
    return UsageError(f"deadline rule '{text[:200]}': {reason}; allowed: {RULE_FORMS}")  # quoted ≤ 200 chars


def field_value(fields: Mapping[str, Any], data: Mapping[str, Any], key: str) -> str:
    """A case's value of a field, or the field's default (`fields`: the definition's field
    specs, each with a `default`): what a deadline's `when` and its variants compare."""
    spec = fields.get(key)
    value = data.get(key, spec.default if spec else None)
    return "" if value is None else str(value)


def matches(fields: Mapping[str, Any], data: Mapping[str, Any], when: Mapping[str, list[str]]) -> bool:
    """Whether a case's values satisfy a `when`: each named field holds one of its values."""
    return all(field_value(fields, data, k) in allowed for k, allowed in when.items())

