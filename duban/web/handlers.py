"""The exception handlers of the board and the API: the only place an exception becomes a
response (the mapping itself is `duban.web.errors`). The API answers JSON; a page answers
the same status with a Chinese page; no live session sends the browser to /login.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from duban.errors import DubanError
from duban.web.auth import COOKIE
from duban.web.errors import PAGE_TITLES, ApiError, SignInRequired, from_duban, log, validation_error
from duban.web.render import error_page


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def json_answer(err: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    return JSONResponse({"error": err.kind, "message": err.message, **err.extra}, err.status, headers=headers)


def answer(request: Request, err: ApiError) -> Response:
    if is_api(request):
        return json_answer(err)
    return error_page(request, err.status, PAGE_TITLES.get(err.status, "出错了"), err.message)


def install(api: FastAPI) -> None:
    """Register the handlers: the only place an exception becomes a status code."""

    @api.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return answer(request, exc)

    @api.exception_handler(DubanError)
    async def _duban_error(request: Request, exc: DubanError) -> Response:
        return answer(request, from_duban(exc))

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return answer(request, validation_error(exc))

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        kinds = {404: "not_found", 405: "invalid", 401: "unauthenticated", 403: "forbidden", 413: "too_large"}
        message = {404: "没有这个地址", 405: "不支持的请求方式"}.get(exc.status_code, str(exc.detail))
        return answer(request, ApiError(exc.status_code, kinds.get(exc.status_code, "invalid"), message))

    @api.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        response = RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)
        if exc.clear_cookie:
            response.delete_cookie(COOKIE, path="/")
        return response

    @api.exception_handler(Exception)
    async def _fault(request: Request, exc: Exception) -> Response:  # a bug of duban's, never bad input
        log.error("web.fault", path=request.url.path, error=type(exc).__name__)
        return answer(request, ApiError(500, "internal", "服务器内部错误，已记录；请联系管理员"))
