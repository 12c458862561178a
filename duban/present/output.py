"""Printing for people (aligned tables that respect Chinese double-width characters),
for scripts (one JSON document) and for spreadsheets (CSV with a BOM)."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Sequence
from typing import Any

import click


def width(text: str) -> int:
    """Display width: CJK characters take two columns in a terminal."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, cols: int) -> str:
    return text + " " * max(0, cols - width(text))


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (list, tuple)):
        return "、".join(str(v) for v in value)
    return str(value)


# The keys of the JSON views that hold an instant (ISO 8601 with offset, office zone).
TIME_KEYS = frozenset({"due_at", "at", "ended_at", "fired_at", "opened_at", "closed_at", "created_at",
                       "decided_at", "lease_until", "last_sweep_at", "stopped_at", "next_due_at"})


def timed(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with their instants as people read them (`shown_time`: 2026-11-30 23:59); the
    JSON views they come from keep ISO instants for scripts."""
    from duban.present.labels import shown_time

    return [{k: shown_time(v) if k in TIME_KEYS and v else v for k, v in r.items()} for r in rows]


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Render rows as an aligned text table; columns are (key, header)."""
    if not rows:
        return "（无）"
    cells = [[cell(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(width(h), *(width(c[i]) for c in cells)) for i, (_, h) in enumerate(columns)]
    lines = ["  ".join(pad(h, w) for (_, h), w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("─" * w for w in widths))
    lines += ["  ".join(pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], *, head: bool = True) -> str:
    """CSV with Chinese headers and a UTF-8 BOM so Excel opens it with Chinese intact; a
    cell Excel would run as a formula is written as text (`duban.exports.cells.defused`).
    `head=False`: the rows alone (a later part of a streamed download)."""
    from duban.exports.cells import defused

    buf = io.StringIO()
    writer = csv.writer(buf)
    if head:
        buf.write("\ufeff")
        writer.writerow([h for _, h in columns])
    for r in rows:
        writer.writerow([defused(cell(r.get(k))) for k, _ in columns])
    return buf.getvalue()


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))
