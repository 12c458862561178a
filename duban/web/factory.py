"""The FastAPI application of one `duban serve` process: pages, `/api/v1`, static files.

`create_app` takes an `App` (database, clock, zone — built by the caller from the same
settings as the CLI, so tests pass a pinned clock) and the sign-in service. FastAPI's own
interactive docs are off: they load their scripts from a CDN, and government intranets
have none. The OpenAPI document is served at /api/v1/openapi.json.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from duban.web import handlers
from duban.web.context import Web

if TYPE_CHECKING:
    from duban.access.service import Access
    from duban.service.app import App

STATIC = Path(__file__).parent / "static"
MAX_BODY = 1 * 1024 * 1024  # a JSON body or a form: far more than any case needs
# An attachment's upload: the 20 MB file (duban.service.attachments refuses the file past that) and its form.
ATTACHMENT_BODY = 20 * 1024 * 1024 + 64 * 1024
_ATTACHING = re.compile(r"^(/api/v1)?/cases/[0-9]+/attachments$")


def create_app(app: App, access: Access, *, secure_cookies: bool = True) -> FastAPI:
    from duban.web import api, api_reviews, board, case_ops, case_pages, notice_print, pages, review_pages

    web = FastAPI(title="duban 督办 API", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/v1/openapi.json",
                  description="督办事项的 HTTP API（SPEC §13）。认证：Authorization: Bearer 令牌。")
    web.state.web = Web.of(app, access, secure_cookies)
    handlers.install(web)
    web.include_router(api.router, prefix="/api/v1")
    web.include_router(case_ops.api, prefix="/api/v1")
    web.include_router(case_ops.pages)
    web.include_router(api_reviews.router, prefix="/api/v1")
    web.include_router(pages.router)
    web.include_router(case_pages.router)
    web.include_router(notice_print.router)
    web.include_router(board.router)
    web.include_router(review_pages.router)
    web.mount("/static", StaticFiles(directory=STATIC), name="static")
    web.add_middleware(BodyLimit)
    return web


class BodyLimit:
    """Refuse a request body over MAX_BODY with 413 `too_large`, before any of it is used:
    by its Content-Length, or while it streams in when it has none."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        limit = ATTACHMENT_BODY if _ATTACHING.match(scope.get("path", "")) else MAX_BODY
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(scope, receive, send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge
            return message

        try:
            await self.inner(scope, counted, send)
        except _TooLarge:
            await _too_large(scope, receive, send, limit)


class _TooLarge(Exception):
    pass


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int = MAX_BODY) -> None:
    from fastapi.responses import JSONResponse

    response = JSONResponse({"error": "too_large", "message": f"请求体超过 {limit // 1024} KB 的上限"}, 413)
    await response(scope, receive, send)
