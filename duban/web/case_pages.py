"""The board's case pages (SPEC §13): 督办台账, 交办, the case page and its action forms.

Forms post back here with the session's CSRF token; an action's form also carries the
case version it was drawn from, so a form left open while someone else acted is refused
(此事项已被他人更新) and the page is drawn again from the fresh case, never applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from duban.engine.ports import COUNT_CAP
from duban.errors import ConcurrencyError, DubanError, NotFoundError, UsageError
from duban.service import attachments
from duban.web import cards, query, render, scope
from duban.web.api_models import NUL
from duban.web.auth import CSRF_FIELD, Principal, check_form, page_principal, web_of
from duban.web.errors import PAGE_TITLES, ApiError, from_duban

router = APIRouter(include_in_schema=False)
Signed = Annotated[Principal, Depends(page_principal)]
STALE = "此事项已被他人更新"
CSV_COLUMNS = [("id", "编号"), ("workflow_label", "流程"), ("state_label", "状态"), ("title", "标题"),
               ("lead_unit", "牵头单位"), ("co_units", "配合单位"), ("due_at", "办结时限"),
               ("escalation_label", "预警级别"), ("overdue", "超期"), ("was_overdue", "曾超期")]


def _filters(request: Request) -> tuple[query.Filters, int | None]:
    """The ledger's filters from the query string; a malformed value is a UsageError."""
    q = request.query_params

    def text(key: str) -> str | None:
        value = q.get(key, "").strip()
        return value[:200] or None

    def number(key: str, top: int) -> int | None:
        value = text(key)
        if value is None:
            return None
        if not value.isdigit() or int(value) > top:
            raise UsageError(f"{key} {value[:20]}：应为 0 至 {top} 的整数")
        return int(value)

    overdue = {"true": True, "false": False, None: None}.get(text("overdue"))
    filters = query.Filters(text("workflow"), text("state"), text("unit"), overdue, number("level", 5),
                            text("due_before"), text("q"))
    return filters, number("cursor", 2**63 - 1)


@router.get("/cases", response_class=HTMLResponse)
def ledger(request: Request, p: Signed) -> Response:
    app = web_of(request).app
    error, items, next_cursor, total = "", [], None, None
    try:
        filters, cursor = _filters(request)
        page, next_cursor, total = query.ledger(app, p.user, filters, query.PAGE, cursor, count=True)
        items = query.lines(app, p.user, page, todo=False)
    except DubanError as exc:
        filters, error = query.Filters(), str(exc)
        total = 0
    return render.page(request, "cases.html", p, status=422 if error else 200, nav="cases", lines=items,
                       filters=filters, error=error, next_cursor=next_cursor, total=total, count_cap=COUNT_CAP,
                       workflows=app.catalog.all(), units=[u["name"] for u in app.units()])


@router.get("/cases.csv")
def ledger_csv(request: Request, p: Signed) -> Response:
    """The filtered ledger as CSV (BOM, Chinese headers), streamed a keyset page at a time
    (`query.pages`): an office's whole ledger is never held at once. The first page is read
    before the answer starts, so a bad filter is still refused as before."""
    from duban.present.output import timed, to_csv

    filters, _ = _filters(request)
    pages = query.pages(web_of(request).app, p.user, filters)
    first = next(pages, [])

    def body() -> Iterator[str]:
        yield to_csv(timed(first), CSV_COLUMNS)
        for page in pages:
            yield to_csv(timed(page), CSV_COLUMNS, head=False)

    return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": "attachment; filename*=UTF-8''%E7%9D%A3%E5%8A%9E%E5%8F%B0%E8%B4%A6.csv",
                                      "Cache-Control": "no-store"})


def _new_form(request: Request, p: Principal, *, status: int = 200, values: dict[str, Any] | None = None,
              errors: dict[str, str] | None = None) -> HTMLResponse:
    app = web_of(request).app
    return render.page(request, "case_new.html", p, status=status, nav="new", values=values or {},
                       errors=errors or {}, workflows=app.catalog.all(), units=[u["name"] for u in app.units()])


@router.get("/cases/new", response_class=HTMLResponse)
def new_case_form(request: Request, p: Signed) -> Response:
    if not scope.may_open(p.user):
        return render.error_page(request, 403, PAGE_TITLES[403], "只有督查室和分管领导可以交办事项")
    return _new_form(request, p)


@router.post("/cases/new")
async def new_case(request: Request, p: Signed) -> Response:
    form = await request.form()
    check_form(p, _one(form, CSRF_FIELD))
    values: dict[str, Any] = {k: _one(form, k) for k in ("workflow", "title", "lead_unit", "due", "milestones", "report")}
    values["co_units"] = [_clean(str(u), "co_units") for u in form.getlist("co_units") if str(u).strip()]
    return await run_in_threadpool(_open, request, p, values)


def _open(request: Request, p: Principal, values: dict[str, Any]) -> Response:
    app = web_of(request).app
    try:
        milestones = [_milestone(line) for line in values["milestones"].splitlines() if line.strip()]
        case = app.open_case(values["workflow"], title=values["title"], lead_unit=values["lead_unit"],
                             co_units=values["co_units"], due=values["due"] or None, values={}, actor=p.user.name,
                             milestones=milestones, report=values["report"] or None)
    except (UsageError, NotFoundError) as exc:
        from duban.web.errors import field_of

        return _new_form(request, p, status=422, values=values, errors={exc.field or field_of(str(exc)): str(exc)})
    return RedirectResponse(f"/cases/{case['id']}", status_code=303)


def _milestone(line: str) -> tuple[str, str]:
    day, sep, title = line.partition("=")
    if not sep or not day.strip() or not title.strip():
        raise UsageError(f"--milestone {line.strip()[:60]}：每行写作 日期=内容，如 2027-03-31=完成方案编制")
    return day.strip(), title.strip()


def _one(form: Any, key: str) -> str:
    value = form.get(key, "")
    return _clean(value, key).strip() if isinstance(value, str) else ""


def _clean(value: str, key: str) -> str:
    if NUL in value:
        raise ApiError(422, "invalid", f"{key}：不能含 NUL 字符", field=key)
    return value


def case_page(request: Request, p: Principal, case: dict[str, Any], *, status: int = 200, message: str = "",
              stale: bool = False, done: str = "") -> HTMLResponse:
    app = web_of(request).app
    shown = cards.deadlines(case, app.clock.now(), app.tz, query.working_calendar(app))
    return render.page(request, "case.html", p, status=status, nav="cases", case=case, deadlines=shown,
                       card=cards.case_card(case, shown), actions=scope.actions(app, p.user, case),
                       history=app.history(case["id"]), notices=app.notices(case_id=case["id"]),
                       message=message, stale=stale, done=done, notes=_case_notes(app, p, case),
                       attachments=attachments.listing(app, case["id"]),
                       may_attach=p.user.role in attachments.ROLES and case["closed_at"] is None)


def _case_notes(app: Any, p: Principal, case: dict[str, Any]) -> list[tuple[str, str]]:
    """The operations that move no state this user may use here: (trigger, label) —
    领导批示 for a leader, 催办 and 关注 / 取消关注 for the office."""
    from duban.engine.case_notes import LABELS

    open_case = case["closed_at"] is None
    if p.user.role == "leader" and open_case:
        return [("instruct", LABELS["instruct"])]
    if p.user.role != "office":
        return []
    watch = "unwatch" if app.watching(case["id"], p.user.name) else "watch"
    return ([("urge", LABELS["urge"])] if open_case else []) + [(watch, LABELS[watch])]


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def show_case(request: Request, case_id: str, p: Signed, done: str = "") -> Response:
    from duban.present.views import trigger_label
    app = web_of(request).app
    case = scope.visible(app, p.user, scope.case_id_of(case_id))
    label = "上传附件" if done == "attached" else trigger_label(scope.workflow_of(app, case["id"]), done[:100]) if done else ""
    return case_page(request, p, case, done=label)


@router.post("/cases/{case_id}/fire")
async def fire(request: Request, case_id: str, p: Signed) -> Response:
    form = await request.form()
    check_form(p, _one(form, CSRF_FIELD))
    fields = {_clean(k.removeprefix("field_"), k): _clean(v, k).strip() for k, v in form.items()
              if k.startswith("field_") and isinstance(v, str) and v.strip()}
    return await run_in_threadpool(_fire, request, p, case_id, _one(form, "trigger"), _one(form, "note"),
                                   _one(form, "version"), fields)


def _fire(request: Request, p: Principal, case_id: str, trigger: str, note: str, version: str,
          fields: dict[str, str]) -> Response:
    app = web_of(request).app
    number = scope.case_id_of(case_id)
    case = scope.visible(app, p.user, number)
    expected = int(version) if version.isdigit() and len(version) < 19 else None
    if expected is None:
        return case_page(request, p, case, status=422, message="表单缺少版本号：请在本页重新提交")
    try:
        app.fire(number, trigger, actor=p.user.name, note=note, values=fields, expected_version=expected)
    except ConcurrencyError:
        return case_page(request, p, app.show(number), status=409, stale=True,
                         message=f"{STALE}：以下是最新情况，请确认后再操作")
    except DubanError as exc:
        err = from_duban(exc)
        return case_page(request, p, app.show(number), status=err.status, message=err.message)
    return RedirectResponse(f"/cases/{number}?done={trigger}", status_code=303)
