"""The board's sign-in, 我的待办 and 通知 pages (SPEC §13).

Sign-in goes through the access service (lockout, TOTP, security events); a successful one
gets a new session id in the `duban_session` cookie — HttpOnly, SameSite=Lax, and Secure
unless the server runs with `--insecure-cookies` — and sign-out ends the session's row.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from duban.access.service import BAD_CREDENTIALS, SignedIn
from duban.web import query, render
from duban.web.api_models import NUL
from duban.web.auth import (
    COOKIE,
    CSRF_FIELD,
    LOGIN_COOKIE,
    Principal,
    check_form,
    login_token_ok,
    new_login_token,
    page_principal,
    web_of,
)
from duban.web.errors import ApiError
from duban.web.inbox import my_notices

router = APIRouter(include_in_schema=False)
Signed = Annotated[Principal, Depends(page_principal)]
TABS = {"todo": "待办", "done": "已办", "co": "协办", "watched": "关注"}
_TAB_ROLES = {"co": "unit", "watched": "office"}  # 协办 for units, 关注 for the office


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path of this site only (never `//other.host`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, *, status: int = 200, message: str = "", name: str = "", totp: bool = False,
                next_path: str = "/") -> HTMLResponse:
    web = web_of(request)
    token = new_login_token()
    response = render.page(request, "login.html", None, status=status, message=message, name=name,
                           totp=totp or bool(web.access.security.require_totp), next_path=safe_next(next_path),
                           login_token=token)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=web.secure_cookies,
                        path="/login")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    web = web_of(request)
    sid = request.cookies.get(COOKIE)
    if sid and web.access.session_user(sid) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next_path=next)


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=200)] = "",
          password: Annotated[str, Form(max_length=2048)] = "", totp: Annotated[str, Form(max_length=20)] = "",
          csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "",
          next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    web = web_of(request)
    if not login_token_ok(request, csrf_token):
        return _login_page(request, status=403, message="登录页已过期，请重新输入", name=username, next_path=next)
    if NUL in username + password + totp:  # nothing a person types; the database could not even look it up
        return _login_page(request, status=401, message=BAD_CREDENTIALS, next_path=next)
    found = web.access.sign_in(username, password, totp or None, via="web")
    if not isinstance(found, SignedIn) or found.session is None:
        need_code = found.reason in ("totp_required", "totp_invalid") if not isinstance(found, SignedIn) else False
        message = found.message if not isinstance(found, SignedIn) else "登录失败"
        return _login_page(request, status=401, message=message, name=username, totp=need_code, next_path=next)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(COOKIE, found.session.id, httponly=True, samesite="lax", secure=web.secure_cookies, path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.get("/logout", response_class=HTMLResponse)
def logout_form(request: Request, p: Signed) -> Response:
    return render.page(request, "logout.html", p)


@router.post("/logout")
def logout(request: Request, p: Signed, csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "") -> Response:
    check_form(p, csrf_token)
    assert p.sid is not None
    web_of(request).access.sign_out(p.sid, via="web")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, p: Signed, tab: str = "todo", cursor: str | None = None) -> Response:
    app = web_of(request).app
    if tab not in TABS or _TAB_ROLES.get(tab, p.user.role) != p.user.role:
        raise ApiError(404, "not_found", f"没有“{tab[:20]}”这个标签页")
    lines, next_cursor = query.tab_page(app, p.user, tab, cursor)  # 50 a page, 下一页 carries the cursor
    tabs = {k: v for k, v in TABS.items() if _TAB_ROLES.get(k, p.user.role) == p.user.role}
    return render.page(request, "todo.html", p, nav="todo", tab=tab, tabs=tabs, lines=lines,
                       next_cursor=next_cursor, first=not cursor)


@router.get("/notices", response_class=HTMLResponse)
def notices(request: Request, p: Signed) -> Response:
    return render.page(request, "notices.html", p, nav="notices", notices=my_notices(web_of(request).app, p.user))
