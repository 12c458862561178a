"""Deadline rules: parsing, Civil Code arithmetic, escalation offsets and suspension."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from duban.engine.calendar import WorkingCalendar
from duban.engine.deadlines import (
    Deadline,
    Offset,
    OffsetUnit,
    Rule,
    RuleUnit,
    compute_deadline,
    parse_offset,
    parse_rule,
    shift,
    working_days_elapsed,
)
from duban.errors import UsageError
from duban.exports.calendar_files import seed_from_chinesecalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
SEED = seed_from_chinesecalendar()
CAL = WorkingCalendar.from_days(((d.day, d.kind) for d in SEED.days), SEED.years)


def local(text: str) -> datetime:
    """An instant written in Shanghai time, e.g. ``2026-09-30 10:00``."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def due(rule: str, anchor: str) -> Deadline:
    return compute_deadline(parse_rule(rule, SHANGHAI), local(anchor), CAL, SHANGHAI)


def end_of(day: str) -> datetime:
    """23:59:59 Shanghai time of ``day``, in UTC (how day periods end)."""
    return local(f"{day} 23:59:59").astimezone(UTC)


class TestParseRule:
    @pytest.mark.parametrize(
        ("text", "unit", "amount"),
        [("30min", "min", 30), ("5h", "h", 5), ("3d", "d", 3), ("5wd", "wd", 5), ("3mo", "mo", 3)],
    )
    def test_relative_rules(self, text: str, unit: RuleUnit, amount: int) -> None:
        """Each relative unit parses to its unit and positive amount, keeping the text."""
        assert parse_rule(text, SHANGHAI) == Rule(unit=unit, amount=amount, text=text)

    def test_day(self) -> None:
        """A bare ISO date is a day rule."""
        assert parse_rule("2027-05-31", SHANGHAI) == Rule(
            unit="date", day=date(2027, 5, 31), text="2027-05-31"
        )

    @pytest.mark.parametrize(
        "text", ["2027-05-31T18:00", "2027-05-31T18:00+08:00", "2027-05-31T10:00:00Z"]
    )
    def test_instant_naive_is_in_office_zone(self, text: str) -> None:
        """An ISO datetime is an instant; without an offset it is in the office's zone."""
        rule = parse_rule(text, SHANGHAI)
        assert rule.unit == "datetime"
        assert rule.instant == datetime(2027, 5, 31, 10, 0, tzinfo=UTC)

    def test_surrounding_blanks_are_ignored(self) -> None:
        """Blanks around a rule from a YAML file or the command line do not matter."""
        assert parse_rule(" 5wd ", SHANGHAI).amount == 5

    @pytest.mark.parametrize(
        "text", ["5x", "-3wd", "0wd", "abc", "2027-13-01", "", "5 wd", "2027-02-30T10:00"]
    )
    def test_bad_rules_name_the_allowed_forms(self, text: str) -> None:
        """A bad rule raises UsageError quoting the text and listing every allowed form."""
        with pytest.raises(UsageError) as caught:
            parse_rule(text, SHANGHAI)
        message = str(caught.value)
        assert f"'{text}'" in message
        for form in ("30min", "5h", "3d", "5wd", "3mo", "2027-05-31", "2027-05-31T18:00"):
            assert form in message

    def test_zero_amount_says_why(self) -> None:
        """A zero amount is refused as not positive."""
        with pytest.raises(UsageError, match="positive"):
            parse_rule("0wd", SHANGHAI)


class TestWorkingDayRules:
    def test_spec_example(self) -> None:
        """SPEC §5.3: 2026-09-30 + 5wd is due at 24:00 of 2026-10-13, Shanghai time."""
        assert due("5wd", "2026-09-30 10:00") == Deadline(end_of("2026-10-13"), False)

    def test_due_time_is_2359_59_local(self) -> None:
        """A day period ends 23:59:59 Shanghai = 15:59:59 UTC, in UTC, whole seconds."""
        result = due("5wd", "2026-09-30 10:00:00.123456")
        assert result.due_at == datetime(2026, 10, 13, 15, 59, 59, tzinfo=UTC)
        assert result.due_at.tzinfo is UTC

    def test_local_date_of_anchor_counts(self) -> None:
        """An anchor 20:00 UTC on Sep 30 is Oct 1 in Shanghai, so counting starts there."""
        anchor = datetime(2026, 9, 30, 20, 0, tzinfo=UTC)
        result = compute_deadline(parse_rule("1wd", SHANGHAI), anchor, CAL, SHANGHAI)
        assert result == Deadline(end_of("2026-10-08"), False)

    def test_into_unknown_year_is_approximate(self) -> None:
        """A case opened 2026-12-28 with 5wd is due 2027-01-04, flagged approximate."""
        assert due("5wd", "2026-12-28 09:00") == Deadline(end_of("2027-01-04"), True)

    def test_inside_known_year_is_exact(self) -> None:
        """2026-12-01 + 5wd stays in 2026 and is not approximate."""
        assert due("5wd", "2026-12-01 09:00") == Deadline(end_of("2026-12-08"), False)


class TestCalendarDayRules:
    def test_last_day_on_sunday_rolls_to_monday(self) -> None:
        """Thu 2026-03-05 + 3d ends Sun 03-08, a rest day, so Mon 03-09 (民法典 §203)."""
        assert due("3d", "2026-03-05 09:00") == Deadline(end_of("2026-03-09"), False)

    def test_holidays_in_the_middle_are_not_deducted(self) -> None:
        """Mon 2026-09-28 + 10d ends Thu 10-08, a working day; the break inside counts."""
        assert due("10d", "2026-09-28 09:00") == Deadline(end_of("2026-10-08"), False)

    def test_last_day_in_holiday_rolls_past_the_break(self) -> None:
        """Mon 2026-09-28 + 3d ends on 10-01, inside the break, so 10-08."""
        assert due("3d", "2026-09-28 09:00") == Deadline(end_of("2026-10-08"), False)

    def test_last_day_on_makeup_saturday_stays(self) -> None:
        """Wed 2026-10-07 + 3d ends Sat 10-10, a make-up working day, so no roll."""
        assert due("3d", "2026-10-07 09:00") == Deadline(end_of("2026-10-10"), False)


class TestMonthRules:
    def test_month_end_clamps_and_makeup_saturday_stays(self) -> None:
        """2026-01-31 + 1mo is 02-28 (no 02-31); a make-up Saturday, so not rolled."""
        assert due("1mo", "2026-01-31 09:00") == Deadline(end_of("2026-02-28"), False)

    def test_leap_year_month_end(self) -> None:
        """2024-01-31 + 1mo is Thu 2024-02-29."""
        assert due("1mo", "2024-01-31 09:00") == Deadline(end_of("2024-02-29"), False)

    def test_month_end_on_rest_day_rolls(self) -> None:
        """2027-01-31 + 1mo is Sun 2027-02-28 (weekends only), rolled to Mon 03-01."""
        assert due("1mo", "2027-01-31 09:00") == Deadline(end_of("2027-03-01"), True)

    def test_same_day_on_holiday_rolls(self) -> None:
        """2026-09-01 + 1mo is 10-01, a holiday, so the period ends 10-08."""
        assert due("1mo", "2026-09-01 09:00") == Deadline(end_of("2026-10-08"), False)

    def test_across_year_end(self) -> None:
        """2026-11-30 + 3mo is 2027-02-28, a Sunday of an unknown year: Mon 03-01."""
        assert due("3mo", "2026-11-30 09:00") == Deadline(end_of("2027-03-01"), True)


class TestExactRules:
    def test_hours_across_a_holiday_are_exact(self) -> None:
        """5h from 22:00 on the eve of National Day runs through the holiday night."""
        result = due("5h", "2026-09-30 22:00")
        assert result == Deadline(local("2026-10-01 03:00").astimezone(UTC), False)

    def test_minutes_drop_microseconds(self) -> None:
        """30min is exact, stored with whole seconds."""
        result = due("30min", "2026-10-03 09:15:07.999")
        assert result == Deadline(datetime(2026, 10, 3, 1, 45, 7, tzinfo=UTC), False)

    def test_day_is_not_rolled(self) -> None:
        """2027-05-31 is due 2027-05-31T23:59:59+08:00, even on a rest day."""
        assert due("2027-05-31", "2026-12-01 09:00") == Deadline(
            datetime.fromisoformat("2027-05-31T23:59:59+08:00"), False
        )
        assert due("2026-10-04", "2026-09-01 09:00") == Deadline(end_of("2026-10-04"), False)

    def test_instant(self) -> None:
        """A datetime rule is that instant, in UTC."""
        result = due("2027-05-31T18:00", "2026-12-01 09:00")
        assert result == Deadline(datetime(2027, 5, 31, 10, 0, tzinfo=UTC), False)

    def test_naive_anchor_is_refused(self) -> None:
        """A naive anchor is a programming error, not silently local time."""
        naive = datetime.fromisoformat("2026-01-01T09:00")
        with pytest.raises(ValueError, match="aware"):
            compute_deadline(parse_rule("5h", SHANGHAI), naive, CAL, SHANGHAI)


class TestDeadlineProperties:
    # Hypothesis wants naive bounds and adds the zone itself.
    anchors = st.datetimes(
        min_value=datetime.fromisoformat("2005-01-01T00:00"),
        max_value=datetime.fromisoformat("2026-09-30T00:00"),
        timezones=st.just(UTC),
    )

    @given(anchors, st.integers(min_value=1, max_value=30))
    def test_working_day_rule_ends_at_end_of_a_working_day(self, anchor: datetime, n: int) -> None:
        """A wd deadline falls at 23:59:59 local of a working day, n working days on."""
        result = compute_deadline(Rule(unit="wd", amount=n), anchor, CAL, SHANGHAI)
        local_due = result.due_at.astimezone(SHANGHAI)
        assert local_due.time() == time(23, 59, 59)
        assert CAL.is_working_day(local_due.date())
        start = anchor.astimezone(SHANGHAI).date()
        assert CAL.working_days_between(start, local_due.date()) == (n, False)

    @given(anchors, st.integers(min_value=1, max_value=60))
    def test_day_rule_never_ends_early_nor_on_rest_day(self, anchor: datetime, n: int) -> None:
        """A d deadline ends on the first working day on or after the n-th day."""
        result = compute_deadline(Rule(unit="d", amount=n), anchor, CAL, SHANGHAI)
        last = result.due_at.astimezone(SHANGHAI).date()
        nth = anchor.astimezone(SHANGHAI).date() + timedelta(days=n)
        assert last >= nth
        assert CAL.is_working_day(last)
        assert CAL.working_days_between(nth - timedelta(days=1), last - timedelta(days=1))[0] == 0

    @given(anchors, st.integers(min_value=1, max_value=1000))
    def test_hour_rule_is_exact(self, anchor: datetime, n: int) -> None:
        """An h deadline is exactly n hours on (to the second)."""
        result = compute_deadline(Rule(unit="h", amount=n), anchor, CAL, SHANGHAI)
        assert result.due_at == (anchor + timedelta(hours=n)).replace(microsecond=0)


class TestParseOffset:
    @pytest.mark.parametrize(
        ("text", "unit", "amount"),
        [
            ("0", "min", 0),
            ("+3wd", "wd", 3),
            ("-1wd", "wd", -1),
            ("-2h", "h", -2),
            ("+30min", "min", 30),
            ("3wd", "wd", 3),
            ("+10d", "d", 10),
        ],
    )
    def test_forms(self, text: str, unit: OffsetUnit, amount: int) -> None:
        """Each allowed form parses; no sign means forward."""
        assert parse_offset(text) == Offset(unit=unit, amount=amount, text=text)

    @pytest.mark.parametrize("text", ["abc", "3", "+3x", "--1wd", "", "3mo", "+ 3wd"])
    def test_bad_offsets_name_the_allowed_forms(self, text: str) -> None:
        """A bad offset raises UsageError listing the allowed forms."""
        with pytest.raises(UsageError, match=r"allowed: 0, \+30min, -2h"):
            parse_offset(text)


class TestShift:
    def test_three_working_days_after_due(self) -> None:
        """督办 +3wd after a 2026-10-13 23:59:59 due instant is 2026-10-16 23:59:59."""
        result = shift(end_of("2026-10-13"), parse_offset("+3wd"), CAL, SHANGHAI)
        assert result == Deadline(end_of("2026-10-16"), False)

    def test_yellow_card_one_working_day_before(self) -> None:
        """预警 -1wd before 2026-10-08 23:59:59 is 2026-09-30 23:59:59 (Oct 1-7 off)."""
        result = shift(end_of("2026-10-08"), parse_offset("-1wd"), CAL, SHANGHAI)
        assert result == Deadline(end_of("2026-09-30"), False)

    def test_hours_and_zero_are_exact(self) -> None:
        """-2h moves exactly two hours; 0 is the instant itself."""
        instant = end_of("2026-10-08")
        assert shift(instant, parse_offset("-2h"), CAL, SHANGHAI).due_at == instant - timedelta(
            hours=2
        )
        assert shift(instant, parse_offset("0"), CAL, SHANGHAI) == Deadline(instant, False)

    def test_calendar_days_keep_local_time(self) -> None:
        """+3d keeps the local time of day and ignores rest days."""
        result = shift(local("2026-09-30 09:30"), parse_offset("+3d"), CAL, SHANGHAI)
        assert result == Deadline(local("2026-10-03 09:30").astimezone(UTC), False)

    def test_into_unknown_year_is_approximate(self) -> None:
        """+10wd from late December 2026 reaches into 2027 and says so."""
        result = shift(end_of("2026-12-28"), parse_offset("+10wd"), CAL, SHANGHAI)
        assert result.approximate
        assert result.due_at == end_of("2027-01-11")

    @given(
        st.dates(min_value=date(2005, 3, 1), max_value=date(2026, 9, 30)),
        st.integers(min_value=1, max_value=20),
    )
    def test_forward_then_back_returns(self, day: date, n: int) -> None:
        """From a working day, +n wd then -n wd is the same instant."""
        assume(CAL.is_working_day(day))
        instant = end_of(day.isoformat())
        there = shift(instant, Offset("wd", n), CAL, SHANGHAI)
        back = shift(there.due_at, Offset("wd", -n), CAL, SHANGHAI)
        assert back == Deadline(instant, False)


class TestWorkingDaysElapsed:
    def test_suspension_over_national_day(self) -> None:
        """Suspended 09-30 to 10-09: only Oct 8 and Oct 9 are working days elapsed."""
        assert working_days_elapsed(
            local("2026-09-30 10:00"), local("2026-10-09 10:00"), CAL, SHANGHAI
        ) == (2, False)

    def test_uses_local_dates(self) -> None:
        """17:00 UTC on Oct 8 is already Oct 9 in Shanghai."""
        start = local("2026-10-07 12:00")
        end = datetime(2026, 10, 8, 17, 0, tzinfo=UTC)
        assert working_days_elapsed(start, end, CAL, SHANGHAI) == (2, False)

    def test_same_day_and_backwards_are_zero(self) -> None:
        """No working day elapses within one local day or backwards."""
        start = local("2026-10-09 08:00")
        assert working_days_elapsed(start, local("2026-10-09 18:00"), CAL, SHANGHAI) == (0, False)
        assert working_days_elapsed(start, local("2026-10-01 18:00"), CAL, SHANGHAI) == (0, False)

    def test_into_unknown_year(self) -> None:
        """A suspension running into 2027 is counted with weekends only, approximate."""
        assert working_days_elapsed(
            local("2026-12-30 10:00"), local("2027-01-04 10:00"), CAL, SHANGHAI
        ) == (3, True)
