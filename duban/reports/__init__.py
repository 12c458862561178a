"""Reports for accountability reviews (SPEC §10): per unit, the period bulletin, and the
accountability brief of a case.

Each report is built by a pure function from cases, audit events and notices already read
from the database (`duban.storage.report_reads`) into a `Report`: named sections of rows with
Chinese column headers. `duban.present.render` prints a report as a table, JSON, CSV or
XLSX, so every report gets every format without code of its own.

Row values keep their types until rendering: instants are aware datetimes (shown in the
office's zone), rates are exact `Fraction`s (shown as percentages; grade bands compare
them exactly), lists are joined with 、, None is shown as '-'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from duban.reports.period import Period

Columns = list[tuple[str, str]]  # (row key, Chinese header); a key may be dotted: "escalations.2"


@dataclass(frozen=True)
class Section:
    """One table of a report."""

    key: str
    title: str
    columns: Columns
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Report:
    """A report ready to render.

    Attributes:
        name: units, bulletin or accountability (the JSON ``report`` field).
        title: the Chinese title printed above it.
        period: the span it covers.
        generated_at: the app clock's now when it was built.
        sections: its tables, in order.
        meta: extra top-level JSON fields (e.g. the grade bands used).
        data: a JSON body to use instead of the sections (nested shapes, e.g. per case).
    """

    name: str
    title: str
    period: Period
    generated_at: datetime
    sections: list[Section]
    meta: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None


def lookup(row: dict[str, Any], key: str) -> Any:
    """A row's value for a column key; ``a.b`` reads ``row["a"]["b"]``."""
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
