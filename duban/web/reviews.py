"""The §10 reports and the §7 audit export, as the board and the API hand them out.

Only the translation from query parameters to the builders' arguments lives here: the
reports are built by `duban.service.reviews.Reviews` and drawn by `duban.present.render`,
the export written by `Reviews.export_audit` with its manifest, exactly as the CLI does.
A bad parameter is a `UsageError` (422 naming it), an unknown case or unit a `NotFoundError`.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from duban.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from duban.reports import Report
    from duban.service.app import App

REPORTS = {"units": "各单位办理情况", "bulletin": "通报", "accountability": "问责专报"}
PERIODS = {"week": "周", "month": "月", "quarter": "季度"}
EXPORT_FORMATS = ("jsonl", "csv", "xlsx")
REPORT_ROLES = ("office", "leader", "inspector")
AUDIT_ROLES = ("office", "inspector")
Params = Mapping[str, str | None]


def _text(params: Params, key: str) -> str | None:
    value = (params.get(key) or "").strip()
    if len(value) > 200:
        raise UsageError(f"{key}：最多 200 个字符")
    return value or None


def _row_id(params: Params, key: str) -> int | None:
    value = _text(params, key)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or not 0 < int(value) < 2**63:
        raise UsageError(f"{key} {value[:20]}：应为案件编号（正整数）")
    return int(value)


def build(app: App, name: str, params: Params) -> Report:
    """The report `name` for these parameters (the same ones as `duban report NAME`)."""
    from duban.reports.period import parse_day, parse_period
    from duban.service.reviews import Reviews

    reviews = Reviews(app)
    if name == "units":
        return reviews.units(parse_period(_text(params, "since"), _text(params, "until"), app.tz))
    if name == "bulletin":
        kind = _text(params, "period") or "month"
        if kind not in PERIODS:
            raise UsageError(f"period {kind[:20]}：应为 week、month 或 quarter")
        day = _text(params, "date")
        return reviews.bulletin(kind, parse_day(day) if day else None)
    if name == "accountability":
        return reviews.accountability(case_id=_row_id(params, "case"), unit=_text(params, "unit"))
    raise NotFoundError(f"没有“{name[:20]}”这个报表（可选：{'、'.join(REPORTS)}）")


def xlsx_bytes(report: Report, tz: Any) -> bytes:
    from duban.present.render import write_xlsx

    with tempfile.TemporaryDirectory(prefix="duban-report-") as tmp:
        path = Path(tmp) / "report.xlsx"
        write_xlsx(report, path, tz)
        return path.read_bytes()


def ledger_cells(row: dict[str, Any], columns: list[tuple[str, str]], tz: Any) -> list[Any]:
    """A 督办台账 row's XLSX cells: deadlines as Excel dates, text never a formula (`xlsx_value`)."""
    from duban.present.render import xlsx_value

    return [xlsx_value(datetime.fromisoformat(v) if k.endswith("_at") and v else v, tz)
            for k in (key for key, _ in columns) for v in (row.get(k),)]


def audit_filter(app: App, params: Params) -> Any:
    from duban.exports.events import AuditFilter
    from duban.reports.period import parse_period

    return AuditFilter(_row_id(params, "case"), _text(params, "unit"), _text(params, "workflow"),
                       parse_period(_text(params, "since"), _text(params, "until"), app.tz))


def audit_zip(app: App, params: Params) -> Path:
    """A zip of the filtered export and its manifest, in a temporary directory the caller
    removes (`remove_dir`) once it is sent: an export can be large, so it is never held in memory."""
    from duban.exports.manifest import manifest_path
    from duban.service.reviews import Reviews

    fmt = _text(params, "format") or "jsonl"
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"format {fmt[:20]}：应为 jsonl、csv 或 xlsx")
    filters = audit_filter(app, params)
    tmp = Path(tempfile.mkdtemp(prefix="duban-export-"))
    try:
        export = tmp / f"audit.{fmt}"
        try:
            Reviews(app).export_audit(export, fmt, filters, jobs=1)
        except NotFoundError as exc:  # a filter naming no case, unit or workflow: a bad value (422)
            raise UsageError(str(exc)) from None
        bundle = tmp / "audit-export.zip"
        with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(export, export.name)
            z.write(manifest_path(export), manifest_path(export).name)
    except BaseException:
        remove_dir(tmp)
        raise
    return bundle


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
