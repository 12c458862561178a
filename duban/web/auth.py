"""Who is asking (SPEC §12): a board session cookie or an API bearer token, and CSRF.

The signed-in user is the actor of everything a request does; no request can name another.
A page without a live session sends the browser to /login (a forged, ended or expired
cookie is cleared on the way). The API answers 401 for no or bad credentials. An unsafe
request authenticated by the cookie must prove it came from one of duban's own pages: a
form carries the session's CSRF token in a hidden field, a script sends it as
`X-CSRF-Token`; a bearer token needs neither (a browser never adds it by itself).

The sign-in form has no session yet, so it is protected by a double-submit token: a random
value in a cookie of its own and the same value in a hidden field, which a page of another
origin can neither read nor set.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from duban.access.service import User
from duban.present.labels import role_label
from duban.web.errors import ApiError, SignInRequired

if TYPE_CHECKING:
    from duban.web.context import Web

T = TypeVar("T")

COOKIE = "duban_session"
LOGIN_COOKIE = "duban_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NO_CREDENTIALS = "未登录或凭据无效：请用 Authorization: Bearer 令牌，或先登录"
BAD_CSRF = "缺少或错误的 CSRF 令牌：请刷新页面后重试"


@dataclass(frozen=True)
class Principal:
    """The signed-in user of a request, and the session it came with (None for a token)."""

    user: User
    sid: str | None = None

    @property
    def csrf(self) -> str:
        from duban.access.sessions import csrf_token

        return csrf_token(self.sid) if self.sid else ""


def web_of(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "Authorization 头应为 “Bearer 令牌”")
    return token.strip()


async def reading(web: Web, read: Callable[..., T], *args: Any) -> T:
    """A short read of bounded size: a credential check, one case. On SQLite it runs here, on
    the event loop: a read of a local file in WAL mode never waits for a writer, and handing
    it to a worker thread cost more than the read (each hand-off is a few hundred µs of the
    one interpreter's time). On PostgreSQL it is a network round trip, which must not hold
    up every other request: a worker thread's. Lists and reports, whose size has no bound,
    always run in worker threads (a sync handler)."""
    if web.app.db.is_sqlite:
        return read(*args)
    return await run_in_threadpool(read, *args)


async def writing(web: Web, write: Callable[..., T], *args: Any) -> T:
    """A short write of bounded size (one step on one case). On SQLite it runs on the event
    loop, in a group commit with the steps that arrived with it (`duban.web.grouped_writes`):
    SQLite runs one write at a time anyway, handing each to a worker thread cost the server a
    third of a fired trigger's CPU (bench/http.py: 16 threads taking turns at the
    interpreter), and one commit for the group is one fsync instead of one a step. When
    another write is under way (the in-process scheduler, another process) the group does
    not wait there, where every other request would wait with it: each of its steps is
    handed to a worker thread, untouched, and waits its turn (`Database.at_once`). On
    PostgreSQL a step is a worker thread's, in its own transaction."""
    if web.writes is not None:
        found: T = await web.writes.run(write, *args)
        return found
    return await run_in_threadpool(write, *args)


async def _token_user(web: Web, token: str) -> User | None:
    found = await reading(web, web.access.token_holder, token)
    if found is not None and found.stale_use:  # a write (once a minute per token): a worker thread's
        await run_in_threadpool(web.access.token_used, found)
    return User.of(found.user) if found is not None else None


async def _session_user(web: Web, sid: str | None) -> User | None:
    if not sid:
        return None
    fresh = await reading(web, web.access.fresh_session_user, sid)
    # anything to write (the idle clock's minute, an ended or unknown session): a worker thread's
    return fresh or await run_in_threadpool(web.access.session_user, sid)


async def api_principal(request: Request) -> Principal:
    """The API's dependency: a bearer token, else the board's cookie with CSRF on unsafe calls."""
    web = web_of(request)
    token = _bearer(request)
    if token is not None:
        user = await _token_user(web, token)
        if user is None:
            raise ApiError(401, "unauthenticated", "令牌无效、已过期、已撤销，或其用户已停用")
        return Principal(user)
    sid = request.cookies.get(COOKIE)
    user = await _session_user(web, sid)
    if user is None or sid is None:
        raise ApiError(401, "unauthenticated", NO_CREDENTIALS)
    if request.method not in SAFE_METHODS and not web.access.csrf_ok(sid, request.headers.get(CSRF_HEADER)):
        raise ApiError(403, "forbidden", BAD_CSRF)
    return Principal(user, sid)


async def page_principal(request: Request) -> Principal:
    """The pages' dependency: the session's user, or off to /login."""
    web = web_of(request)
    sid = request.cookies.get(COOKIE)
    user = await _session_user(web, sid)
    if user is None or sid is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else "/", clear_cookie=sid is not None)
    found = Principal(user, sid)
    request.state.principal = found  # an error page shows the header of the one who asked
    return found


def only(p: Principal, roles: tuple[str, ...], what: str) -> None:
    """403 unless the user's role is one of `roles` (`what`: the thing refused, for the message)."""
    if p.user.role not in roles:
        raise ApiError(403, "forbidden", f"{role_label(p.user.role)}不能{what}（可以的角色："
                       + "、".join(role_label(r) for r in roles) + "）")


def check_form(principal: Principal, token: str | None) -> None:
    """A form POST must carry its session's CSRF token (403 otherwise, nothing done)."""
    if principal.sid is None or not token or not _csrf_ok(principal.sid, token):
        raise ApiError(403, "forbidden", BAD_CSRF)


def _csrf_ok(sid: str, token: str) -> bool:
    from duban.access.sessions import csrf_ok

    return csrf_ok(sid, token)


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def login_token_ok(request: Request, field: str | None) -> bool:
    cookie = request.cookies.get(LOGIN_COOKIE)
    return bool(cookie and field) and hmac.compare_digest(str(cookie).encode(), str(field).encode())
