"""Pages from Jinja2 templates (duban/web/templates), every value HTML-escaped.

Autoescaping is on for every template, whatever its name, so a title holding `<script>`
is stored as typed and shown as text. The header of every page knows the signed-in user,
the session's CSRF token (for the forms) and the number of notices to the user.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from duban.present.labels import level_label, role_label, shown_time
from duban.web.auth import CSRF_FIELD, web_of
from duban.web.cards import CARD_LABELS
from duban.web.inbox import unread

if TYPE_CHECKING:
    from duban.web.auth import Principal

TEMPLATES = Path(__file__).parent / "templates"

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)
_env.filters["time"] = shown_time
_env.filters["role"] = role_label
_env.filters["level"] = level_label
_env.globals.update(CSRF_FIELD=CSRF_FIELD, CARD_LABELS=CARD_LABELS)


def page(request: Request, template: str, principal: Principal | None, *, status: int = 200,
         **context: Any) -> HTMLResponse:
    user = principal.user if principal else None
    body = _env.get_template(template).render(
        request=request, user=user, csrf=principal.csrf if principal else "",
        nav=context.pop("nav", ""), notices_count=_notices_count(request, principal), **context)
    return HTMLResponse(body, status_code=status, headers=_NO_STORE)


# Pages hold case data and a CSRF token: not for shared caches or the back button after sign-out.
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
             "Referrer-Policy": "same-origin",
             "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                        "form-action 'self'; frame-ancestors 'none'"}


def _notices_count(request: Request, principal: Principal | None) -> int:
    return unread(web_of(request).app, principal.user) if principal is not None else 0  # 未读


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    return page(request, "error.html", principal, status=status, title=title, message=message)
