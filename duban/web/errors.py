"""Every error the board and the API answer with, mapped in this one place (SPEC §13).

The API answers JSON `{"error": KIND, "message": TEXT, ...}`: `unauthenticated` 401,
`forbidden` 403, `not_found` 404 (also another unit's case), `refused` 409 (with
`allowed`), `conflict` 412 for a stale If-Match and 409 otherwise, `invalid` 422 (with
`field`), `too_large` 413. A page answers the same status with a Chinese page, and a
missing or dead session sends the browser to /login. Bad input is never a 500: only a
fault of duban's own is, and its answer says nothing of the fault (it goes to the log).
The handlers that turn these into responses are `duban.web.handlers`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.exceptions import RequestValidationError

from duban import errors as e
from duban.logconfig import get_logger

log = get_logger("duban.web")

PAGE_TITLES = {401: "请先登录", 403: "无权进行此操作", 404: "未找到", 405: "不支持的请求方式", 409: "操作未执行",
               412: "此事项已被他人更新", 413: "内容过大", 422: "填写有误", 500: "服务器内部错误", 503: "暂时无法使用"}
# A message of the service names the CLI option that was wrong; the API names its own field.
_FIELDS = [("--co-unit", "co_units"), ("--unit", "lead_unit"), ("--due", "due"), ("--title", "title"),
           ("--milestone", "milestones"), ("--report", "report"), ("--note", "note"), ("--workflow", "workflow"),
           ("--state", "state"), ("due_before", "due_before"), ("level", "level"),
           ("--since", "since"), ("--until", "until"), ("deadline rule", "due"), ("unknown workflow", "workflow")]
_SET = re.compile(r"--set (\w+)")
_PYDANTIC = {"missing": "缺少必填字段", "extra_forbidden": "未知字段（不接受此字段）", "json_invalid": "请求体不是有效的 JSON",
             "string_type": "应为字符串", "int_parsing": "应为整数", "int_type": "应为整数", "bool_parsing": "应为 true 或 false",
             "list_type": "应为数组", "dict_type": "应为对象", "model_attributes_type": "应为 JSON 对象",
             "less_than_equal": "超出允许的最大值", "greater_than_equal": "小于允许的最小值",
             "string_too_long": "过长", "string_too_short": "不能为空", "too_long": "条目过多"}


class ApiError(Exception):
    """An answer decided by the web layer itself (no credentials, a stale If-Match …)."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.extra = status, kind, message, extra


class SignInRequired(Exception):
    """A page was asked for without a live session: the browser goes to /login."""

    def __init__(self, next_path: str, clear_cookie: bool) -> None:
        super().__init__(next_path)
        self.next_path, self.clear_cookie = next_path, clear_cookie


def field_of(message: str) -> str:
    """The request field a service message is about (the CLI option it names)."""
    found = _SET.search(message)
    best: tuple[int, str] | None = (found.start(), f"data.{found.group(1)}") if found else None
    for needle, name in _FIELDS:
        at = message.find(needle)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, name)
    return best[1] if best else "body"


def from_duban(exc: e.DubanError) -> ApiError:
    """The answer to an error the service raised."""
    text = str(exc)
    if isinstance(exc, e.NotFoundError):
        return ApiError(404, "not_found", text)
    if isinstance(exc, e.PermissionDeniedError):
        return ApiError(403, "forbidden", text)
    if isinstance(exc, e.TransitionNotAllowedError):
        return ApiError(409, "refused", text, allowed=exc.allowed)
    if isinstance(exc, e.RefusedError):
        return ApiError(409, "refused", text, allowed=[])
    if isinstance(exc, e.ConcurrencyError):
        return ApiError(409, "conflict", text)
    if isinstance(exc, e.IntegrityError):  # a stored file or row does not match its audit event
        return ApiError(409, "integrity", text)
    if isinstance(exc, e.UsageError):
        return ApiError(422, "invalid", text, field=exc.field or field_of(text))
    if isinstance(exc, e.DefinitionError):
        return ApiError(422, "invalid", text, field="workflow")
    log.error("web.service_error", error=type(exc).__name__, reason=text)
    return ApiError(503, "unavailable", "服务暂时无法使用（数据库不可用或出错），请稍后再试")


def validation_error(exc: RequestValidationError) -> ApiError:
    """The 422 answer to a request FastAPI could not read (every problem listed, the first named)."""
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        kind = str(err.get("type", ""))
        if kind == "json_invalid":
            loc = []
        message = str(err.get("msg", "")).removeprefix("Value error, ") if kind == "value_error" else \
            _PYDANTIC.get(kind, str(err.get("msg", "")))
        problems.append({"field": ".".join(loc) or "body", "message": message})
    first = problems[0] if problems else {"field": "body", "message": "请求无效"}
    return ApiError(422, "invalid", f"{first['field']}：{first['message']}", field=first["field"], problems=problems)
