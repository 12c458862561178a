"""The working-day calendar table: seeded from chinesecalendar, extended by imports."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, extract, insert, select

from duban.engine.calendar import DAY_ONE, WorkingCalendar
from duban.storage.tables import CAL_DAYS, CAL_YEARS

if TYPE_CHECKING:  # a type only: loading the calendar needs no YAML reader
    from duban.exports.calendar_files import CalendarImport


def load(conn: Connection, rest_day_start: str = DAY_ONE) -> WorkingCalendar:
    """The calendar table, counting a case received on a rest day as ``rest_day_start`` says
    (the office's settings, `duban.workflows.office_rest_day_start`)."""
    days = [(r.day, r.kind) for r in conn.execute(select(CAL_DAYS.c.day, CAL_DAYS.c.kind))]
    years = [r.year for r in conn.execute(select(CAL_YEARS.c.year))]
    return WorkingCalendar.from_days(days, years, rest_day_start)


def is_empty(conn: Connection) -> bool:
    return conn.execute(select(CAL_YEARS.c.year).limit(1)).first() is None


def store(conn: Connection, imported: CalendarImport, now: datetime) -> None:
    """Write the imported days (replacing any earlier entry for the same day) and, for an
    official schedule (not a CSV of local overrides), mark its years as known."""
    days = [d.day for d in imported.days]
    for chunk in range(0, len(days), 500):
        conn.execute(delete(CAL_DAYS).where(CAL_DAYS.c.day.in_(days[chunk : chunk + 500])))
    if imported.days:
        conn.execute(
            insert(CAL_DAYS),
            [{"day": d.day, "kind": d.kind, "name": d.name, "source": d.source} for d in imported.days],
        )
    if not imported.official:
        return
    conn.execute(delete(CAL_YEARS).where(CAL_YEARS.c.year.in_(imported.years)))
    conn.execute(
        insert(CAL_YEARS),
        [{"year": y, "source": imported.source, "loaded_at": now} for y in imported.years],
    )


def known_years(conn: Connection) -> list[int]:
    return [r.year for r in conn.execute(select(CAL_YEARS.c.year).order_by(CAL_YEARS.c.year))]


def year(conn: Connection, year: int) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The year's record (None if not loaded) and its special days."""
    info = conn.execute(select(CAL_YEARS).where(CAL_YEARS.c.year == year)).first()
    rows = conn.execute(
        select(CAL_DAYS).where(extract("year", CAL_DAYS.c.day) == year).order_by(CAL_DAYS.c.day)
    )
    return (dict(info._mapping) if info else None), [dict(r._mapping) for r in rows]


def days_in(conn: Connection, start: date, end: date) -> list[dict[str, Any]]:
    rows = conn.execute(select(CAL_DAYS).where(CAL_DAYS.c.day >= start, CAL_DAYS.c.day <= end))
    return [dict(r._mapping) for r in rows]
