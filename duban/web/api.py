"""`/api/v1` (SPEC §13): JSON over the same use cases as the CLI and the board.

Every route takes the caller from `auth.api_principal` (a bearer token, or the board's
cookie plus `X-CSRF-Token` on unsafe calls) and acts as that user. A case the caller may
not see is 404 like a case that does not exist. Errors are mapped in `duban.web.errors`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from duban.errors import ConcurrencyError, NotFoundError, PermissionDeniedError, RefusedError
from duban.present.labels import role_label
from duban.web import query, reviews, scope
from duban.web.api_models import CasePage, Fire, Me, NewCase, Verified
from duban.web.auth import Principal, api_principal, only, reading, web_of, writing
from duban.web.context import Web
from duban.web.errors import ApiError, field_of
from duban.web.inbox import my_notices
from duban.web.scope import case_id_of

router = APIRouter(tags=["v1"])
Caller = Annotated[Principal, Depends(api_principal)]


def _shown(request: Request, p: Principal, case: dict[str, Any]) -> dict[str, Any]:
    return scope.with_my_triggers(web_of(request).app, p.user, case)


@router.get("/me", response_model=Me, summary="当前用户")
async def me(p: Caller) -> Me:
    return Me(name=p.user.name, role=p.user.role, role_label=role_label(p.user.role), unit=p.user.unit)


@router.get("/todo", summary="我的待办（最近的时限在前；按页，下一页见 Link / X-Next-Cursor）")
def todo(request: Request, response: Response, p: Caller,
         limit: Annotated[int, Query(ge=1, le=query.MAX_LIMIT)] = query.PAGE,
         cursor: Annotated[str | None, Query(max_length=40)] = None) -> list[dict[str, Any]]:
    """A page of the to-do (SPEC §13: a list of case JSON, soonest due first), `limit` a page
    (≤ 200, default 50). The list stays the answer; the next page's cursor is in the headers
    (`Link: <…?cursor=…>; rel="next"`, `X-Next-Cursor`), absent on the last page."""
    lines, key = query.todo_page(web_of(request).app, p.user, query.parse_cursor(cursor), limit)
    following = query.cursor_text(key)
    if following is not None:
        response.headers["X-Next-Cursor"] = following
        response.headers["Link"] = f'</api/v1/todo?limit={limit}&cursor={following}>; rel="next"'
    return [{**line.case, "card": line.card, "remaining": line.deadline.remaining if line.deadline else None,
             "my_triggers": [a.trigger for a in line.actions]} for line in lines]


@router.get("/cases", response_model=CasePage, summary="督办台账（按编号分页）")
def list_cases(request: Request, p: Caller, workflow: str | None = None, state: str | None = None,
               unit: str | None = None, overdue: bool | None = None,
               level: Annotated[int | None, Query(ge=0, le=5)] = None, due_before: str | None = None,
               q: Annotated[str | None, Query(max_length=200)] = None,
               limit: Annotated[int, Query(ge=1, le=query.MAX_LIMIT)] = query.PAGE,
               cursor: Annotated[int | None, Query(ge=0, lt=2**63)] = None) -> CasePage:
    filters = query.Filters(workflow, state, unit, overdue, level, due_before, q)
    try:
        items, next_cursor, _ = query.ledger(web_of(request).app, p.user, filters, limit, cursor)
    except NotFoundError as exc:  # a unit filter naming no unit of the directory: a bad value
        raise ApiError(422, "invalid", str(exc), field=field_of(str(exc))) from None
    return CasePage(items=items, next_cursor=next_cursor)


@router.post("/cases", status_code=201, summary="交办（开案）")
def open_case(request: Request, response: Response, body: NewCase, p: Caller) -> dict[str, Any]:
    app = web_of(request).app
    try:
        case = app.open_case(body.workflow, title=body.title, lead_unit=body.lead_unit, co_units=body.co_units,
                             due=body.due, values=body.data, actor=p.user.name, report=body.report,
                             milestones=[(m.due, m.title) for m in body.milestones])
    except NotFoundError as exc:  # the body named a workflow or unit that does not exist
        raise ApiError(422, "invalid", str(exc), field=field_of(str(exc))) from None
    response.headers["Location"] = f"/api/v1/cases/{case['id']}"
    response.headers["ETag"] = f'"{case["version"]}"'
    return _shown(request, p, case)


def _case_answer(body: dict[str, Any], status: int = 200) -> JSONResponse:
    """A case document as its own response, with its version as the ETag: a plain dict of
    strings and numbers needs no validation, and FastAPI's serialising of a returned dict
    through the response model was a measurable part of each call (bench/http.py)."""
    return JSONResponse(body, status, headers={"ETag": f'"{body["version"]}"'})


@router.get("/cases/{case_id}", response_model=dict[str, Any], summary="案件详情（ETag 为版本号）")
async def show_case(request: Request, case_id: str, p: Caller) -> Response:
    web = web_of(request)
    return _case_answer(await reading(web, scope.case_document, web.app, p.user, case_id_of(case_id)))


def expected_version(if_match: str | None) -> int | None:
    """The version an If-Match names ("3", W/"3"); `*` or none: no check."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ApiError(412, "conflict", f'If-Match {if_match[:40]!r}: give the ETag of the case, e.g. "3"')
    return int(text)


@router.post("/cases/{case_id}/fire", response_model=dict[str, Any],
             summary="对案件执行操作（If-Match 防止覆盖他人的更新）")
async def fire(request: Request, case_id: str, body: Fire, p: Caller,
               if_match: Annotated[str | None, Header(alias="If-Match")] = None) -> Response:
    return await writing(web_of(request), _fire, web_of(request), case_id, body, p, if_match)


def _fire(web: Web, case_id: str, body: Fire, p: Principal, if_match: str | None) -> Response:
    app = web.app
    number = case_id_of(case_id)
    try:
        version = expected_version(if_match)
    except ApiError:  # another unit's case: 404 before anything else, a bad If-Match too
        scope.check_visible(app, p.user, number)
        raise
    try:  # the visibility check is the step's first, in its transaction: 404 changes nothing
        after = app.fire(number, body.trigger, actor=p.user.name, note=body.note, values=body.data,
                         expected_version=version, seen=scope.sees_case(p.user))
    except ConcurrencyError as exc:
        if version is None:
            raise
        raise ApiError(412, "conflict", str(exc), version=app.show(number)["version"]) from None
    except PermissionDeniedError:
        raise
    except RefusedError as exc:  # not allowed now, or a guard failed: what this caller could do
        allowed = [a.trigger for a in scope.actions(app, p.user, app.show(number))]
        raise ApiError(409, "refused", str(exc), allowed=allowed) from None
    return _case_answer(scope.with_my_triggers(app, p.user, after))


@router.get("/cases/{case_id}/events", summary="案件的审计事件")
def events(request: Request, case_id: str, p: Caller) -> list[dict[str, Any]]:
    app = web_of(request).app
    number = case_id_of(case_id)
    scope.visible(app, p.user, number)
    return app.history(number)


@router.get("/notices", summary="我的通知（unread=true：只列未读的）")
def notices(request: Request, p: Caller, unread: bool = False) -> list[dict[str, Any]]:
    found = my_notices(web_of(request).app, p.user)
    return [n for n in found if not n["read"]] if unread else found


@router.get("/reports/units", summary="各单位办理情况（SPEC §10）")
def report_units(request: Request, p: Caller, since: str | None = None, until: str | None = None) -> dict[str, Any]:
    from duban.present.render import report_json
    from duban.reports.period import parse_period
    from duban.service.reviews import Reviews

    only(p, reviews.REPORT_ROLES, "查看各单位报表")
    app = web_of(request).app
    return report_json(Reviews(app).units(parse_period(since, until, app.tz)), app.tz)


@router.get("/audit/verify", response_model=Verified, summary="校验审计链")
def audit_verify(request: Request, p: Caller) -> Verified:
    only(p, reviews.AUDIT_ROLES, "校验审计链")
    count, head, broken = web_of(request).app.verify(1)
    return Verified(ok=broken is None, events=count, head=head, first_bad=broken.seq if broken else None,
                    reason=broken.reason if broken else None)
