"""Rendering reports: an aligned table, one JSON document, CSV (UTF-8 with BOM) or XLSX.

CSV of a one-section report is a plain table; a report of several sections is written as
blocks (a title row, the header, the rows, a blank line). XLSX gets one sheet per section
with Chinese headers in bold, a frozen header row, widths that fit the content, instants
as real Excel dates and rates as percentages. `XlsxBook` is also what the audit export
streams its rows through (openpyxl write-only mode: rows go to disk as they come).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, tzinfo
from fractions import Fraction
from itertools import chain, islice
from pathlib import Path
from typing import Any

from duban.exports.cells import defused
from duban.present.output import width
from duban.reports import Report, Section, lookup

DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
PERCENT_FORMAT = "0.00%"
MAX_WIDTH = 80  # wide enough for a SHA-256 in hex
EXCEL_MAX_TEXT = 32767
_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")  # XML 1.0 forbids these; openpyxl refuses them
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


# -- cells ------------------------------------------------------------------------------
def percent(rate: Fraction) -> str:
    return f"{float(rate * 100):.2f}%"


def text(value: Any, tz: tzinfo) -> str:
    """A value as people read it in a table or CSV."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return f"{value.astimezone(tz):%Y-%m-%d %H:%M}"
    if isinstance(value, Fraction):
        return percent(value)
    if isinstance(value, (list, tuple)):
        return "、".join(text(v, tz) for v in value) or "-"
    if isinstance(value, dict):
        return "；".join(f"{k}:{text(v, tz)}" for k, v in value.items()) or "-"
    return str(value)


def jsonable(value: Any, tz: tzinfo) -> Any:
    """A value for JSON: instants ISO 8601 in the office's zone, rates as percentages (2 places)."""
    if isinstance(value, datetime):
        return value.astimezone(tz).isoformat()
    if isinstance(value, Fraction):
        return round(float(value * 100), 2)
    if isinstance(value, dict):
        return {str(k): jsonable(v, tz) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, tz) for v in value]
    return value


# -- table, JSON, CSV -------------------------------------------------------------------
def render_table(report: Report, tz: tzinfo) -> str:
    from duban.present.output import table

    head = f"{report.title}  {report.period.describe(tz)}  （生成于 {report.generated_at.astimezone(tz):%Y-%m-%d %H:%M}）"
    parts = [head]
    for s in report.sections:
        rows = [{k: text(lookup(r, k), tz) for k, _ in s.columns} for r in s.rows]
        parts.append(f"\n【{s.title}】\n" + table(rows, s.columns))
    return "\n".join(parts)


def report_json(report: Report, tz: tzinfo) -> dict[str, Any]:
    body = report.data if report.data is not None else {s.key: s.rows for s in report.sections}
    return {
        "report": report.name, "title": report.title, "period": report.period.to_json(tz),
        "generated_at": report.generated_at.astimezone(tz).isoformat(),
        **jsonable(report.meta, tz), **jsonable(body, tz),
    }


def sheet_text(value: Any, tz: tzinfo) -> str:
    """A value as a CSV cell: as `text`, and text someone typed (a title, a unit, a note)
    that a spreadsheet would run as a formula written with a leading ``'`` (`duban.exports.cells`);
    numbers, dates and the "-" of no value are never touched."""
    shown = text(value, tz)
    return defused(shown) if isinstance(value, (str, list, tuple, dict)) and shown != "-" else shown


CHECKPOINT_COLUMNS = [("id", "检查点编号"), ("size", "事件数"), ("root", "默克尔根"), ("signed_at", "签署时间"),
                      ("fingerprint", "密钥指纹")]


def _sections(report: Report) -> list[Section]:
    """The report's tables, then the audit log's latest signed checkpoint when the report was
    given one (SPEC §15: a file handed to a review names the log it was drawn from)."""
    if "checkpoint" not in report.meta:
        return list(report.sections)
    cp = report.meta["checkpoint"]
    rows = [cp] if cp else [{"id": "尚未签署", "size": "-", "root": "-", "signed_at": "-", "fingerprint": "-"}]
    return [*report.sections, Section("checkpoint", "审计检查点", CHECKPOINT_COLUMNS, rows)]


def render_csv(report: Report, tz: tzinfo) -> str:
    """CSV with a BOM; several sections become blocks with their titles. The checkpoint, when
    there is one, is a last block after the report's own table."""
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf)
    many = len(report.sections) > 1
    for s in report.sections:
        if many:
            writer.writerow([f"【{s.title}】"])
        writer.writerow([h for _, h in s.columns])
        writer.writerows([sheet_text(lookup(r, k), tz) for k, _ in s.columns] for r in s.rows)
        if many:
            writer.writerow([])
    for s in _sections(report)[len(report.sections):]:
        if not many:
            writer.writerow([])
        writer.writerow([f"【{s.title}】"])
        writer.writerow([h for _, h in s.columns])
        writer.writerows([sheet_text(lookup(r, k), tz) for k, _ in s.columns] for r in s.rows)
    return buf.getvalue()


# -- XLSX -------------------------------------------------------------------------------
class Percent(float):
    """A rate in an XLSX cell: a number shown with a percent format."""


def xlsx_value(value: Any, tz: tzinfo) -> Any:
    """A value for an XLSX cell: instants as naive local datetimes (Excel has no zones)."""
    if isinstance(value, datetime):
        return value.astimezone(tz).replace(tzinfo=None)
    if isinstance(value, Fraction):
        return Percent(value)
    if value is None or isinstance(value, (bool, str, list, tuple, dict)):
        return sheet_text(value, tz)
    return value


def _display_width(value: Any) -> int:
    if isinstance(value, datetime):
        return 19
    if isinstance(value, Percent):
        return 8
    return width(str(value)) if value is not None else 0


class XlsxBook:
    """A write-only workbook: sheets are streamed to disk row by row, saved on close."""

    def __init__(self, path: Path) -> None:
        from openpyxl import Workbook

        self.path = path
        self.book = Workbook(write_only=True)

    @classmethod
    @contextmanager
    def open(cls, path: Path) -> Iterator[XlsxBook]:
        book = cls(path)
        yield book
        book.book.save(path)

    def sheet(self, title: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]], *,
              sample: int | None = None) -> None:
        """Add a sheet and stream ``rows`` into it (values already converted by `xlsx_value`).

        Column widths must be written before the first row, so they fit the header and the
        first ``sample`` rows (all rows when None), capped at MAX_WIDTH.
        """
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        ws = self.book.create_sheet(_SHEET_BAD.sub("_", title)[:31] or "Sheet")
        it = iter(rows)
        head = list(it) if sample is None else list(islice(it, sample))
        for i, (_, header) in enumerate(columns):
            fitted = max([_display_width(header), *(_display_width(r[i]) for r in head)])
            ws.column_dimensions[get_column_letter(i + 1)].width = min(fitted + 2, MAX_WIDTH)
        ws.freeze_panes = "A2"
        bold = Font(bold=True)
        header_cells = []
        for _, header in columns:
            c = WriteOnlyCell(ws, value=header)
            c.font = bold
            header_cells.append(c)
        ws.append(header_cells)
        for row in chain(head, it):
            ws.append([_cell(ws, v, WriteOnlyCell) for v in row])


def _cell(ws: Any, value: Any, make: Any) -> Any:
    """A cell for one value: dates and rates formatted, text kept as text (never a formula)."""
    if isinstance(value, datetime):
        c = make(ws, value=value)
        c.number_format = DATE_FORMAT
        return c
    if isinstance(value, Percent):
        c = make(ws, value=float(value))
        c.number_format = PERCENT_FORMAT
        return c
    if isinstance(value, str):
        if _ILLEGAL.search(value):
            value = _ILLEGAL.sub("", value)
        if len(value) > EXCEL_MAX_TEXT:
            value = value[: EXCEL_MAX_TEXT - 1] + "…"
        if value.startswith("="):  # not defused by its writer (`duban.exports.cells`): still text, never a formula
            c = make(ws, value=value)
            c.data_type = "s"
            return c
    return value


def write_xlsx(report: Report, path: Path, tz: tzinfo) -> None:
    """One sheet per section."""
    with XlsxBook.open(path) as book:
        for s in _sections(report):
            rows = [[xlsx_value(lookup(r, k), tz) for k, _ in s.columns] for r in s.rows]
            book.sheet(s.title, s.columns, rows)


def write_report(report: Report, fmt: str, path: Path, tz: tzinfo) -> None:
    """Write a CSV or XLSX report to ``path`` atomically (no partial file on error)."""
    from duban.exports.safe_files import atomic_files, check_output

    target = check_output(path)
    with atomic_files(target) as (tmp,):
        if fmt == "xlsx":
            write_xlsx(report, tmp, tz)
        else:
            tmp.write_text(render_csv(report, tz), encoding="utf-8", newline="")
