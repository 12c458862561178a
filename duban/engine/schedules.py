"""Recurring duties: progress reports due every month on a day, or every two weeks.

Seed 000 asks for 月调度 (a monthly report, e.g. by the 5th, DOMAIN §2.3 [S38]); seed 001
for 每两周信息报送 (every two weeks). A schedule yields one due instant per period; the
period that ends without a `report_progress` is flagged, and the next period begins.
"""

from __future__ import annotations

import calendar as _months
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from duban.errors import FieldRef, UsageError

SCHEDULE_FORMS = "monthly:5 (every month by the 5th; 1–31, a short month ends on its last day), biweekly (every 14 days)"
_MONTHLY = re.compile(r"monthly:(\d{1,2})")


def is_schedule(text: str) -> bool:
    return text == "biweekly" or text.startswith("monthly:")


def check_schedule(text: str) -> str:
    """The schedule text if valid, else a UsageError listing the allowed forms."""
    m = _MONTHLY.fullmatch(text)
    if text == "biweekly" or (m and 1 <= int(m.group(1)) <= 31):
        return text
    raise UsageError(FieldRef("report"), f" {text}: allowed: {SCHEDULE_FORMS}")


def schedule_label(schedule: str) -> str:
    """A schedule as people say it: 每月5日前, 每两周."""
    m = _MONTHLY.fullmatch(schedule)
    return f"每月{int(m.group(1))}日前" if m else "每两周" if schedule == "biweekly" else schedule


def next_due(schedule: str, after: datetime, tz: tzinfo) -> datetime:
    """The end (23:59:59 local) of the period that follows `after`: 14 days later, or the
    D-th of the next month (月调度: the month's progress is reported by the D-th of the
    month after, so a case accepted on 3 March first reports by 5 April)."""
    day = after.astimezone(tz).date()
    if schedule == "biweekly":
        due = day + timedelta(days=14)
    else:
        wanted = int(check_schedule(schedule).split(":")[1])
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        due = _on_day(year, month, wanted)
    return datetime.combine(due, time(23, 59, 59), tz).astimezone(UTC)


def _on_day(year: int, month: int, wanted: int) -> date:
    return date(year, month, min(wanted, _months.monthrange(year, month)[1]))
