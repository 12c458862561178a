"""Clocks: the only place duban reads the wall clock.

The engine asks a clock once per command and uses that instant for the transition, the
audit event and any timers it arms. Tests and rehearsals pin the clock (`--now`,
`DUBAN_NOW`) or move a `ManualClock` forward instead of sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

from duban.errors import UsageError

DEFAULT_TZ = "Asia/Shanghai"


class Clock(Protocol):
    """Something that tells the current instant (aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: the tests' and the demo's time machine."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        """Move forward by a ``timedelta(**delta)`` and return the new instant."""
        self._now += timedelta(**delta)
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant.astimezone(UTC)


def parse_instant(text: str, tz: tzinfo, *, what: str = "--now") -> datetime:
    """Parse an ISO date or datetime; a value without offset is in the office's zone.

    A bare date means the start of that day. Raises UsageError naming the option.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{what}: '{text[:200]}' is not an ISO date or datetime "
            "(allowed e.g. 2027-05-31, 2027-05-31T09:30, 2027-05-31T09:30+08:00)"
        ) from None
    from duban.engine.deadlines import check_year

    check_year(value.year, f"{what} '{text[:40]}'")  # before any arithmetic can overflow
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    """The office's zone by IANA name, or a UsageError saying which names are allowed."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        raise UsageError(f"--tz: unknown time zone '{name}' (use an IANA name such as Asia/Shanghai)") from None
