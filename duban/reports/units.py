"""`report units`: per lead unit, how it handled its cases in a period (考核).

A case counts for a period when it was open at some moment of it. Within the period:
closed on time (按时办结: closed normally, every deadline its lead unit owes met in time —
main, sign-for, press conference, 重办, milestones, plan) or late (逾期办结: any of them
missed, or closed by an accountability decision); at the period's end (or now): still open
with one of them passed unmet (超期未办结). The on-time rate (按时办结率) is on time over those
three; the sign-for rate (及时签收率) is sign-for deadlines met over those settled; the
satisfaction rate (回访满意率) is satisfied revisits over rated cases closed in the period.
The grade is taken from the satisfaction rate when the unit has one, else from the
on-time rate; an accountability decision in the period makes it the lowest band.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any

from duban.present.labels import LEVEL_LABELS
from duban.reports import Report, Section
from duban.reports.facts import (
    HOLD,
    CaseView,
    Events,
    closed_on_time,
    overdue_at,
    raised_level,
    satisfaction,
    sign_for_outcome,
)
from duban.reports.grading import Band, grade, rank
from duban.reports.period import Period

LEVELS = (1, 2, 3, 4)  # ladder levels; 5 (问责) is counted as measures
COLUMNS = [
    ("rank", "排名"), ("unit", "牵头单位"), ("cases", "案件数"), ("closed", "办结"), ("closed_on_time", "按时办结"),
    ("closed_late", "逾期办结"), ("open_overdue", "超期未办结"), ("on_time_rate", "按时办结率"),
    ("sign_for_rate", "及时签收率"),
    *[(f"escalations.{n}", LEVEL_LABELS[n]) for n in LEVELS],
    ("measures", "问责"), ("satisfaction", "回访满意率"), ("grade", "等级"), ("flag", "末位"),
]
FLAG = "取消评优资格"


def rate(part: int, whole: int) -> Fraction | None:
    return Fraction(part, whole) if whole else None


def active_in(v: CaseView, period: Period) -> bool:
    """Open at some moment of the period."""
    c = v.case
    return (period.end is None or c.opened_at < period.end) and (
        period.start is None or c.closed_at is None or c.closed_at >= period.start)


def unit_row(unit: str, views: Sequence[CaseView], events: Events, period: Period, now: datetime,
             bands: Sequence[Band]) -> dict[str, Any]:
    """The figures of one lead unit (before ranking)."""
    as_of = period.as_of(now)
    closed = [v for v in views if v.case.closed_at in period]
    on_time = sum(1 for v in closed if closed_on_time(v))
    late = len(closed) - on_time
    overdue = sum(1 for v in views if overdue_at(v, as_of))
    signs = [s for v in views if (s := sign_for_outcome(v.case, as_of)) is not None]
    verdicts = [s for v in closed if (s := satisfaction(v.case)) is not None]
    escalations: Counter[int] = Counter()
    measures: list[str] = []
    for v in views:
        for e in events.get(v.id, []):
            if e["at"] not in period:
                continue
            if raised_level(e):
                escalations[int(e["data"]["level"])] += 1
            elif e.get("trigger") == HOLD:
                measures.append(str(e["data"].get("measure") or v.case.data.get("measure") or "问责"))
    on_time_rate = rate(on_time, on_time + late + overdue)
    satisfied = rate(sum(verdicts), len(verdicts))
    grading_rate = satisfied if satisfied is not None else on_time_rate
    return {
        "unit": unit, "cases": len(views), "closed": len(closed), "closed_on_time": on_time, "closed_late": late,
        "open_overdue": overdue, "on_time_rate": on_time_rate, "sign_for_rate": rate(sum(signs), len(signs)),
        "escalations": {str(n): escalations[n] for n in LEVELS}, "measures": measures,
        "satisfaction": satisfied, "grading_rate": grading_rate,
        "graded_by": "violation" if measures else "satisfaction" if satisfied is not None else "on_time_rate",
        "grade": grade(grading_rate, bool(measures), bands),
    }


def build(views: Sequence[CaseView], events: Events, period: Period, now: datetime, bands: Sequence[Band]) -> Report:
    """The units report: one row per lead unit, ranked, the bottom three flagged."""
    by_unit: dict[str, list[CaseView]] = {}
    for v in views:
        if active_in(v, period):
            by_unit.setdefault(v.case.lead_unit, []).append(v)
    rows = [unit_row(u, vs, events, period, now, bands) for u, vs in sorted(by_unit.items())]
    rank(rows, bands)
    for r in rows:
        r["flag"] = FLAG if r["bottom_three"] else ""
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["unit"]))
    return Report(
        name="units", title="承办单位督办考核", period=period, generated_at=now,
        sections=[Section("units", "各牵头单位", COLUMNS, rows)],
        meta={"grades": [b.to_json() for b in bands]},
    )
