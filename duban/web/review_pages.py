"""The board's 报表 and 审计 pages and their downloads (SPEC §10, §13, §15), and the XLSX
download of 督办台账.

`/reports` draws a §10 report as tables with its period picker and links to the same
report as CSV (BOM) and XLSX; `/audit` shows the chain's status, the latest signed
checkpoint and a form for the export zip (export + manifest). Reports are for the office,
leaders and inspectors; the audit page and export for the office and inspectors (a unit
user gets 403). Everything is built by `duban.web.reviews` over the service layer.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.background import BackgroundTask

from duban.errors import DubanError
from duban.web import query, render, reviews
from duban.web.auth import Principal, only, page_principal, web_of
from duban.web.errors import ApiError

router = APIRouter(include_in_schema=False)
Signed = Annotated[Principal, Depends(page_principal)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def attachment(name: str) -> dict[str, str]:
    """Content-Disposition for a Chinese file name (RFC 6266 / 5987), never a path."""
    return {**NO_STORE, "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, p: Signed, name: str = "units") -> Response:
    only(p, reviews.REPORT_ROLES, "查看报表")
    app = web_of(request).app
    if name not in reviews.REPORTS:
        raise ApiError(404, "not_found", f"没有“{name[:20]}”这个报表")
    params = {key: "" for key in ("since", "until", "period", "date", "case", "unit")} | dict(request.query_params)
    report, error = None, ""
    try:
        report = reviews.build(app, name, params)
    except DubanError as exc:
        error = str(exc)
    from duban.present.render import text

    download = "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items() if k != "name" and v)
    return render.page(request, "reports.html", p, status=422 if error else 200, nav="reports", name=name,
                       names=reviews.REPORTS, periods=reviews.PERIODS, params=params, report=report, error=error,
                       cell=lambda row, key: text(lookup(row, key), app.tz), download=download, tz=app.tz,
                       units=[u["name"] for u in app.units()])


def lookup(row: dict[str, object], key: str) -> object:
    from duban.reports import lookup as find

    return find(row, key)


@router.get("/reports/{name}.csv")
def report_csv(request: Request, p: Signed, name: str) -> Response:
    from duban.present.render import render_csv

    only(p, reviews.REPORT_ROLES, "下载报表")
    app = web_of(request).app
    report = reviews.build(app, name, request.query_params)
    return Response(render_csv(report, app.tz), media_type="text/csv; charset=utf-8",
                    headers=attachment(f"{report.title}.csv"))


@router.get("/reports/{name}.xlsx")
def report_xlsx(request: Request, p: Signed, name: str) -> Response:
    only(p, reviews.REPORT_ROLES, "下载报表")
    app = web_of(request).app
    report = reviews.build(app, name, request.query_params)
    return Response(reviews.xlsx_bytes(report, app.tz), media_type=XLSX, headers=attachment(f"{report.title}.xlsx"))


# Rows whose text sets the XLSX column widths (written before the first row): the download's
# first pages, not the whole ledger, so the workbook is filled page by page.
WIDTH_SAMPLE = 1000


@router.get("/cases.xlsx")
def ledger_xlsx(request: Request, p: Signed) -> Response:
    """The filtered ledger as XLSX (`reviews.ledger_cells`), filled a keyset page at a
    time (`query.pages`) into a write-only workbook on disk, then sent from the file and removed."""
    import tempfile
    from itertools import chain
    from pathlib import Path

    from duban.present.render import XlsxBook
    from duban.web.case_pages import CSV_COLUMNS, _filters

    app = web_of(request).app
    filters, _ = _filters(request)
    pages = query.pages(app, p.user, filters)
    first = next(pages, [])  # a bad filter is refused here, before anything is written

    folder = Path(tempfile.mkdtemp(prefix="duban-ledger-"))
    try:
        path = folder / "ledger.xlsx"
        with XlsxBook.open(path) as book:
            book.sheet("督办台账", CSV_COLUMNS, (reviews.ledger_cells(r, CSV_COLUMNS, app.tz)
                                              for page in chain([first], pages) for r in page), sample=WIDTH_SAMPLE)
    except BaseException:
        reviews.remove_dir(folder)
        raise
    return FileResponse(path, media_type=XLSX, headers=attachment("督办台账.xlsx"),
                        background=BackgroundTask(reviews.remove_dir, folder))


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, p: Signed, verify: bool = False) -> Response:
    """The chain's head always (one indexed read); the whole chain recomputed only when asked
    (`?verify=1`, the page's 立即校验): on a log of millions of events that takes a while."""
    from duban.exports.events import chain_head
    from duban.service.checkpoints import stored_summary

    only(p, reviews.AUDIT_ROLES, "查看审计")
    app = web_of(request).app
    checked = app.verify(1) if verify else None
    with app.db.read() as conn:
        head = chain_head(conn)
    return render.page(request, "audit.html", p, nav="audit", head=head, checked=checked,
                       checkpoint=stored_summary(app), formats=reviews.EXPORT_FORMATS,
                       workflows=app.catalog.all(), units=[u["name"] for u in app.units()])


def export_response(request: Request, p: Principal) -> Response:
    """The export zip, streamed from a temporary file removed once it is sent."""
    only(p, reviews.AUDIT_ROLES, "导出审计日志")
    bundle = reviews.audit_zip(web_of(request).app, request.query_params)
    return FileResponse(bundle, media_type="application/zip", headers=attachment("审计日志导出.zip"),
                        background=BackgroundTask(reviews.remove_dir, bundle.parent))


@router.get("/audit/export.zip")
def audit_export(request: Request, p: Signed) -> Response:
    return export_response(request, p)
