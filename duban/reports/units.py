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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

from duban.present.labels import LEVEL_LABELS
from duban.reports import Report, Section
from duban.reports.facts import (
    HOLD,
    Batch,
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


@dataclass
class Tally:
    """One lead unit's figures so far, added to a batch of cases at a time (so a report holds
    a figure per unit, not its cases; `duban.storage.report_reads.period_cases`)."""

    cases: int = 0
    closed: int = 0
    on_time: int = 0
    overdue: int = 0
    signs: int = 0  # sign-for deadlines settled
    signed: int = 0  # of them, met in time
    verdicts: int = 0  # rated revisits of cases closed in the period
    satisfied: int = 0
    escalations: Counter[int] = field(default_factory=Counter)
    measures: list[tuple[int, int, str]] = field(default_factory=list)  # (case id, its n-th, measure)

    def add(self, v: CaseView, events: list[dict[str, Any]], period: Period, as_of: datetime) -> None:
        """Count one case that was active in the period, with its escalations and decisions."""
        c = v.case
        self.cases += 1
        if c.closed_at in period:
            self.closed += 1
            self.on_time += closed_on_time(v)
            if (s := satisfaction(c)) is not None:
                self.verdicts += 1
                self.satisfied += s
        self.overdue += overdue_at(v, as_of)
        if (s := sign_for_outcome(c, as_of)) is not None:
            self.signs += 1
            self.signed += s
        for i, e in enumerate(events):
            if e["at"] not in period:
                continue
            if raised_level(e):
                self.escalations[int(e["data"]["level"])] += 1
            elif e.get("trigger") == HOLD:
                self.measures.append((v.id, i, str(e["data"].get("measure") or c.data.get("measure") or "问责")))

    def row(self, unit: str, bands: Sequence[Band]) -> dict[str, Any]:
        """The unit's row (before ranking)."""
        late = self.closed - self.on_time
        on_time_rate = rate(self.on_time, self.on_time + late + self.overdue)
        satisfied = rate(self.satisfied, self.verdicts)
        grading_rate = satisfied if satisfied is not None else on_time_rate
        measures = [m for _, _, m in sorted(self.measures)]  # by case, as listed, whatever order the batches came in
        return {
            "unit": unit, "cases": self.cases, "closed": self.closed, "closed_on_time": self.on_time,
            "closed_late": late, "open_overdue": self.overdue, "on_time_rate": on_time_rate,
            "sign_for_rate": rate(self.signed, self.signs),
            "escalations": {str(n): self.escalations[n] for n in LEVELS}, "measures": measures,
            "satisfaction": satisfied, "grading_rate": grading_rate,
            "graded_by": "violation" if measures else "satisfaction" if satisfied is not None else "on_time_rate",
            "grade": grade(grading_rate, bool(measures), bands),
        }


def tally(batches: Iterable[Batch], period: Period, now: datetime) -> dict[str, Tally]:
    """Each lead unit's figures over the cases active in the period, a batch at a time."""
    as_of = period.as_of(now)
    found: dict[str, Tally] = {}
    for views, events in batches:
        for v in views:
            if active_in(v, period):
                found.setdefault(v.case.lead_unit, Tally()).add(v, events.get(v.id, []), period, as_of)
    return found


def build(views: Sequence[CaseView], events: Events, period: Period, now: datetime, bands: Sequence[Band]) -> Report:
    """The units report: one row per lead unit, ranked, the bottom three flagged."""
    return build_batches([(views, events)], period, now, bands)


def build_batches(batches: Iterable[Batch], period: Period, now: datetime, bands: Sequence[Band]) -> Report:
    """`build` over cases read a batch at a time (`duban.service.reviews`)."""
    rows = [t.row(u, bands) for u, t in sorted(tally(batches, period, now).items())]
    rank(rows, bands)
    for r in rows:
        r["flag"] = FLAG if r["bottom_three"] else ""
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["unit"]))
    return Report(
        name="units", title="承办单位督办考核", period=period, generated_at=now,
        sections=[Section("units", "各牵头单位", COLUMNS, rows)],
        meta={"grades": [b.to_json() for b in bands]},
    )
