"""Attachments and read receipts on the API and the board (SPEC §13).

`POST /api/v1/cases/{id}/attachments` takes a multipart `file` (≤ 20 MB: the body limit of
`factory.BodyLimit` for these paths stops a larger one while it streams in, and
`duban.service.attachments` stops the file part itself); a download is checked against the SHA-256
in the audit event that added the file. 领导批示 / 催办 / 关注 are triggers fired through the
existing `/fire` routes. `POST /api/v1/notices/{id}/read` records a read receipt.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from duban.errors import DubanError
from duban.service import attachments, receipts
from duban.web import scope
from duban.web.auth import CSRF_FIELD, Principal, api_principal, check_form, page_principal, web_of
from duban.web.errors import ApiError, from_duban

api = APIRouter(tags=["v1"])
pages = APIRouter(include_in_schema=False)
Caller = Annotated[Principal, Depends(api_principal)]
Signed = Annotated[Principal, Depends(page_principal)]


def _number(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**63:
        raise ApiError(404, "not_found", f"no {what} {text[:40]}")
    return int(text)


def _add(request: Request, p: Principal, case_id: str, file: UploadFile) -> dict[str, Any]:
    app = web_of(request).app
    number = _number(case_id, "case")
    scope.visible(app, p.user, number)  # another unit's case: 404 before anything is read
    try:
        return attachments.add(app, number, p.user.name, file.filename, file.content_type, file.file)
    except attachments.TooLargeError as exc:
        raise ApiError(413, "too_large", str(exc)) from None


def _download(request: Request, p: Principal, case_id: str, aid: str) -> Response:
    app = web_of(request).app
    number = _number(case_id, "case")
    scope.visible(app, p.user, number)
    meta, content = attachments.fetch(app, number, _number(aid, "attachment"))
    # RFC 6266 / 5987: an ASCII fallback, and the real (Chinese) name percent-encoded
    disposition = f"attachment; filename=\"attachment-{meta['id']}\"; filename*=UTF-8''{quote(meta['name'], safe='')}"
    return Response(content, media_type="application/octet-stream",
                    headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff",
                             "Cache-Control": "no-store", "X-Content-SHA256": meta["sha256"]})


@api.post("/cases/{case_id}/attachments", status_code=201, summary="添加附件（multipart file，≤ 20 MB）")
def add_attachment(request: Request, case_id: str, p: Caller, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    return _add(request, p, case_id, file)


@api.get("/cases/{case_id}/attachments", summary="案件的附件")
def list_attachments(request: Request, case_id: str, p: Caller) -> list[dict[str, Any]]:
    app = web_of(request).app
    number = _number(case_id, "case")
    scope.visible(app, p.user, number)
    return attachments.listing(app, number)


@api.get("/cases/{case_id}/attachments/{aid}", summary="下载附件（校验 SHA-256）")
def get_attachment(request: Request, case_id: str, aid: str, p: Caller) -> Response:
    return _download(request, p, case_id, aid)


@api.post("/notices/{notice_id}/read", summary="标为已读（回执）")
def read_notice(request: Request, notice_id: str, p: Caller) -> dict[str, Any]:
    return receipts.mark_read(web_of(request).app, _number(notice_id, "notice"), p.user.name, p.user.role,
                              p.user.unit)


@pages.post("/cases/{case_id}/attachments")
async def upload_page(request: Request, case_id: str, p: Signed) -> Response:
    async with request.form() as form:  # closes the spooled upload however this ends
        token = form.get(CSRF_FIELD)
        check_form(p, token if isinstance(token, str) else "")
        file = form.get("file")
        if not hasattr(file, "file"):
            raise ApiError(422, "invalid", "请选择要上传的文件", field="file")
        return await run_in_threadpool(_upload, request, p, case_id, file)


def _upload(request: Request, p: Principal, case_id: str, file: Any) -> Response:
    from duban.web.case_pages import case_page

    try:
        added = _add(request, p, case_id, file)
    except (DubanError, ApiError) as exc:
        err = exc if isinstance(exc, ApiError) else from_duban(exc)
        if err.status == 404:
            raise err from None
        app = web_of(request).app
        return case_page(request, p, app.show(_number(case_id, "case")), status=err.status, message=err.message)
    return RedirectResponse(f"/cases/{added['case_id']}?done=attached", status_code=303)


@pages.get("/cases/{case_id}/attachments/{aid}")
def download_page(request: Request, case_id: str, aid: str, p: Signed) -> Response:
    return _download(request, p, case_id, aid)


@pages.post("/notices/{notice_id}/read")
async def read_page(request: Request, notice_id: str, p: Signed) -> Response:
    form = await request.form()
    token = form.get(CSRF_FIELD)
    check_form(p, token if isinstance(token, str) else "")
    await run_in_threadpool(receipts.mark_read, web_of(request).app, _number(notice_id, "notice"), p.user.name,
                            p.user.role, p.user.unit)
    return RedirectResponse("/notices", status_code=303)
