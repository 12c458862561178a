"""CSV exports show each instant as ``datetime.isoformat`` in the office's zone; `LocalTimes`
works it out once per UTC hour where it can. The text must be the same as instant by
instant, in zones with whole-hour offsets, daylight saving changes, half-hour offsets,
whole seconds and microseconds, and years before 1000 (another text form)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from duban.engine.audit import batch_of, format_instant
from duban.exports.writers import LocalTimes

ZONES = ["Asia/Shanghai", "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "America/St_Johns",
         "Australia/Lord_Howe", "Asia/Kathmandu"]


def instants() -> list[datetime]:
    rng = random.Random(7)
    out = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(86400 * 400),
                                                        microseconds=rng.choice([0, 1, 999_999]))
           for _ in range(2000)]
    for start in (datetime(2026, 3, 29, 0, tzinfo=UTC), datetime(2026, 3, 8, 6, tzinfo=UTC),
                  datetime(2026, 10, 25, 0, tzinfo=UTC), datetime(2026, 4, 4, 14, tzinfo=UTC)):
        out += [start + timedelta(minutes=m, seconds=s) for m in range(0, 240, 7) for s in (0, 59)]
    return out


def batch(values: list[datetime], with_instants: bool) -> Any:
    records = [{"seq": i, "case_id": 1, "at": v, "actor": "a", "role": "office", "action": "fire", "trigger": None,
                "from_state": None, "to_state": None, "note": "", "data": {}, "prev_hash": "", "hash": ""}
               for i, v in enumerate(values, 1)]
    b = batch_of(records)
    return replace(b, instants=values) if with_instants else b


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("with_instants", [False, True])
def test_local_times_are_isoformat_in_the_zone(zone: str, with_instants: bool) -> None:
    tz = ZoneInfo(zone)
    values = instants()
    assert LocalTimes(tz).texts(batch(values, with_instants)) == [v.astimezone(tz).isoformat() for v in values]


def test_years_before_1000_and_the_fast_path() -> None:
    """Early years have another chain text (unpadded year): read back instant by instant; the usual
    batch of a whole-hour zone is worked out by the hour."""
    tz = ZoneInfo("Asia/Shanghai")
    early = [datetime(999, 12, 31, 23, 59, 59, 5, tzinfo=UTC), datetime(1000, 1, 1, 0, 30, tzinfo=UTC)]
    assert format_instant(early[0]).startswith("999-")
    assert LocalTimes(tz).texts(batch(early, False)) == [v.astimezone(tz).isoformat() for v in early]
    assert LocalTimes(tz)._by_hour(batch(instants(), False).at) is not None
    assert LocalTimes(ZoneInfo("Asia/Kolkata"))._by_hour(batch(instants(), False).at) is None
