"""SPEC §16 "A case received on a rest day": both readings, checked against
``chinese_calendar.find_workday`` over the package's years, and chosen in the settings."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from chinese_calendar import find_workday, is_workday

from duban.engine.calendar import DAY_ONE, DEEMED_NEXT_WORKING_DAY, WorkingCalendar
from duban.engine.deadlines import compute_deadline, parse_rule
from duban.exports.calendar_files import seed_from_chinesecalendar
from tests.conftest import Duban

TZ = ZoneInfo("Asia/Shanghai")
SEED = seed_from_chinesecalendar()
FIRST, LAST = date(SEED.years[0] + 1, 1, 1), date(SEED.years[-1], 9, 30)  # leave room for N days after LAST


def calendar(mode: str) -> WorkingCalendar:
    return WorkingCalendar.from_days(((d.day, d.kind) for d in SEED.days), SEED.years, mode)


def pairs(count: int = 2000) -> list[tuple[date, int]]:
    """Random (received day, N) pairs with a fixed seed: a day of the package's years, 1–60 wd."""
    rng = random.Random(20261202)
    span = (LAST - FIRST).days
    return [(FIRST + timedelta(days=rng.randrange(span)), rng.randint(1, 60)) for _ in range(count)]


def due_day(cal: WorkingCalendar, received: date, n: int) -> date:
    anchor = datetime.combine(received, datetime.min.time().replace(hour=10), tzinfo=TZ)
    deadline = compute_deadline(parse_rule(f"{n}wd", TZ), anchor, cal, TZ)
    assert deadline.approximate is False
    return deadline.due_at.astimezone(TZ).date()


def test_the_sample_has_both_kinds_of_start() -> None:
    starts = [is_workday(d) for d, _ in pairs()]
    assert starts.count(False) > 300 and starts.count(True) > 300


def test_deemed_next_working_day_is_find_workday_everywhere() -> None:
    cal = calendar(DEEMED_NEXT_WORKING_DAY)
    wrong = [(d, n) for d, n in pairs() if due_day(cal, d, n) != find_workday(n, d)]
    assert wrong == []


def test_day_one_is_find_workday_on_working_day_starts_and_one_day_earlier_on_rest_days() -> None:
    cal = calendar(DAY_ONE)
    for d, n in pairs():
        ours, theirs = due_day(cal, d, n), find_workday(n, d)
        if is_workday(d):
            assert ours == theirs, (d, n)
        else:  # one working day earlier: the first working day after the rest day is day 1
            assert ours == find_workday(n - 1, d) and ours < theirs, (d, n)


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="rest_day_start"):
        WorkingCalendar.from_days([], [], "sometimes")


# -- the setting, end to end ------------------------------------------------------------
SATURDAY = "2026-03-07T10:00"  # received on Saturday; Mon 03-09 is the next working day


def settings(tmp_path: Path, mode: str | None) -> dict[str, str]:
    path = tmp_path / "settings.yaml"
    path.write_text(f"calendar:\n  rest_day_start: {mode}\n" if mode else "workflows: {}\n", encoding="utf-8")
    return {"DUBAN_SETTINGS": str(path)}


@pytest.mark.parametrize(("mode", "due"), [(None, "2026-03-13"), ("day_one", "2026-03-13"),
                                           ("deemed_next_working_day", "2026-03-16")])
def test_case_open_on_a_saturday(sqlite_url: str, tmp_path: Path, mode: str | None, due: str) -> None:
    """5 wd from a Saturday: Fri 03-13 by default (Mon is day 1), Mon 03-16 when the office deems
    the case received on Monday; `workflow show` says which, and where it comes from."""
    duban = Duban(sqlite_url)
    env = settings(tmp_path, mode)
    duban.ok("init")
    duban.ok("user", "add", "wang", "--role", "office")
    duban.ok("unit", "add", "区发改局")
    case: dict[str, Any] = duban.ok("case", "open", "supervision", "--title", "周六收件", "--unit", "区发改局",
                                    "--due", "5wd", "--json", now=SATURDAY, actor="wang", env=env).json
    assert case["due_at"].startswith(due)
    shown = duban.ok("workflow", "show", "supervision", "--json", env=env).json["calendar"]
    assert shown["rest_day_start"] == (mode or "day_one")
    assert ("settings.yaml" in shown["source"]) == (mode is not None)
    assert f"rest_day_start: {mode or 'day_one'}" in duban.ok("workflow", "show", "supervision", env=env).stdout


def test_a_bad_mode_in_the_settings_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    duban = Duban(sqlite_url)
    run = duban("workflow", "show", "supervision", env=settings(tmp_path, "whenever"))
    assert run.code == 4 and "calendar.rest_day_start" in run.stderr and "deemed_next_working_day" in run.stderr
