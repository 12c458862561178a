"""`/api/v1` rows for reviews (SPEC §13): the bulletin and accountability reports as JSON
and the audit export zip. (`/reports/units` and `/audit/verify` are in `duban.web.api`.)"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from duban.web import reviews
from duban.web.auth import Principal, api_principal, only, web_of
from duban.web.review_pages import export_response

router = APIRouter(tags=["v1"])
Caller = Annotated[Principal, Depends(api_principal)]
Text = Annotated[str | None, Query(max_length=200)]


def _json(request: Request, name: str, params: dict[str, str | None]) -> dict[str, Any]:
    from duban.present.render import report_json

    app = web_of(request).app
    return report_json(reviews.build(app, name, params), app.tz)


@router.get("/reports/bulletin", summary="通报（周、月、季度，SPEC §10）")
def report_bulletin(request: Request, p: Caller, period: Literal["week", "month", "quarter"] = "month",
                    date: Text = None) -> dict[str, Any]:
    only(p, reviews.REPORT_ROLES, "查看通报")
    return _json(request, "bulletin", {"period": period, "date": date})


@router.get("/reports/accountability", summary="问责专报（SPEC §10）")
def report_accountability(request: Request, p: Caller, case: Text = None, unit: Text = None) -> dict[str, Any]:
    only(p, reviews.REPORT_ROLES, "查看问责专报")
    return _json(request, "accountability", {"case": case, "unit": unit})


@router.get("/audit/export", summary="导出审计日志（zip：导出文件与清单；办公室、纪检）",
            response_class=Response, responses={200: {"content": {"application/zip": {}}}})
def audit_export(request: Request, p: Caller, format: Literal["jsonl", "csv", "xlsx"] = "jsonl",
                 case: Text = None, unit: Text = None, workflow: Text = None, since: Text = None,
                 until: Text = None) -> Response:
    return export_response(request, p)
