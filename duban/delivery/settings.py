"""The `notify` section of the office's settings file (DUBAN_SETTINGS), checked whole.

```yaml
notify:
  board_url: https://duban.example.gov.cn
  office: 区委督查室                      # who signs the messages and the printed notices
  email:    {host: smtp.example.gov.cn, port: 465, tls: ssl, user: duban, password_env: DUBAN_SMTP_PASSWORD,
             from: 督查室 <duban@example.gov.cn>}
  webhook:  {url: https://oa.example.gov.cn/hooks/duban, secret_env: DUBAN_WEBHOOK_SECRET}
  dingtalk: {url: https://oapi.dingtalk.com/robot/send?access_token=…, secret_env: DUBAN_DINGTALK_SECRET}
  wecom:    {url_env: DUBAN_WECOM_URL}      # the key is in the URL: keep it in the environment
  feishu:   {url: https://open.feishu.cn/open-apis/bot/v2/hook/…, secret_env: DUBAN_FEISHU_SECRET}
  routes:
    - {kinds: [催办通知, 督办通知], to: unit, via: [email, dingtalk]}
    - {kinds: [通报], to: [unit, leader, "user:wang"], via: [email, webhook]}
```

Secrets (`secret_env`, `password_env`, `url_env`) are names of environment variables; the
values are read only by the deliverer when it starts (`resolve_secrets`) and are never
stored, logged or put in an error. A bad section is a `SettingsError` (exit 2) naming the
file and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duban.errors import UsageError

CHANNELS = ("email", "webhook", "dingtalk", "wecom", "feishu")
ROBOTS = ("dingtalk", "wecom", "feishu")
ROLES = ("unit", "leader", "office", "inspector")  # `unit`: any notice addressed to a unit
_COMMON = ("timeout", "ca_file", "rate_per_minute")
_KEYS = {
    "email": ("host", "port", "tls", "user", "password_env", "from", *_COMMON),
    "webhook": ("url", "url_env", "secret_env", *_COMMON),
    "dingtalk": ("url", "url_env", "secret_env", "msgtype", *_COMMON),
    "wecom": ("url", "url_env", "msgtype", *_COMMON),
    "feishu": ("url", "url_env", "secret_env", *_COMMON),
}
_TOP = ("board_url", "office", "number_word", "retry", "routes", *CHANNELS)
ROBOT_RATE = 20  # messages a minute: what 钉钉, 企业微信 and 飞书 allow one robot


class SettingsError(UsageError):
    """The notify section of a settings file cannot be used (exit 2), naming the key."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file, self.key, self.reason = file, key, reason
        super().__init__(f"{file}: {key}: {reason}")


@dataclass(frozen=True)
class Channel:
    name: str  # one of CHANNELS
    options: Mapping[str, Any]
    timeout: float
    rate_per_minute: int | None  # None: no limit

    def secret_names(self) -> dict[str, str]:
        """The environment variables this channel reads, by key."""
        return {k: str(self.options[k]) for k in ("secret_env", "password_env", "url_env") if self.options.get(k)}


@dataclass(frozen=True)
class Route:
    kinds: frozenset[str]
    to: tuple[str, ...]  # unit | leader | office | inspector | unit:NAME | user:NAME
    via: tuple[str, ...]


@dataclass(frozen=True)
class Retry:
    attempts: int = 10
    first_delay: float = 180.0  # seconds; doubles each time: 10 attempts span about a day
    factor: float = 2.0
    jitter: float = 0.2  # each wait is stretched or shrunk by up to this fraction

    def delay(self, attempt: int, draw: float) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based); `draw` in [0, 1)."""
        base = self.first_delay * self.factor ** (attempt - 1)
        return base * (1 + self.jitter * (2 * draw - 1))


@dataclass(frozen=True)
class NotifySettings:
    file: str
    channels: dict[str, Channel]
    routes: tuple[Route, ...]
    board_url: str | None = None
    office: str = "督查室"
    number_word: str = "督办"
    retry: Retry = field(default_factory=Retry)

    def routed(self, kind: str) -> list[Route]:
        return [r for r in self.routes if kind in r.kinds]

    def case_url(self, case_id: int) -> str | None:
        return f"{self.board_url.rstrip('/')}/cases/{case_id}" if self.board_url else None


# -- reading -------------------------------------------------------------------------
def settings_path() -> str | None:
    return os.environ.get("DUBAN_SETTINGS") or None


def load(file: str | None) -> NotifySettings | None:
    """The notify section of `file` (None: no file, or no `notify` in it), checked for shape."""
    if not file:
        return None
    from duban.errors import DefinitionError
    from duban.workflows import read_yaml

    try:
        raw = read_yaml(Path(file))
    except DefinitionError as exc:
        raise SettingsError(file, exc.path or "notify", exc.reason) from None
    if raw is None or (isinstance(raw, dict) and "notify" not in raw):
        return None
    if not isinstance(raw, dict):
        raise SettingsError(file, "", "a settings file is a mapping (e.g. 'notify: {routes: […]}')")
    return parse(raw["notify"], file)


def parse(section: Any, file: str) -> NotifySettings:
    if not isinstance(section, dict):
        raise SettingsError(file, "notify", "must be a mapping of channels, routes and board_url")
    for key in section:
        if key not in _TOP:
            raise SettingsError(file, f"notify.{key}", f"unknown key or channel (channels: {', '.join(CHANNELS)}; "
                                                       f"other keys: board_url, office, number_word, retry, routes)")
    channels = {name: _channel(name, section[name], file) for name in CHANNELS if name in section}
    routes = _routes(section.get("routes"), channels, file)
    board_url = _text(section, "board_url", file, required=False)
    if board_url is not None and not re.match(r"^https?://", board_url):
        raise SettingsError(file, "notify.board_url", "must start with http:// or https://")
    return NotifySettings(
        file=file, channels=channels, routes=routes, board_url=board_url,
        office=_text(section, "office", file, required=False) or "督查室",
        number_word=_text(section, "number_word", file, required=False) or "督办",
        retry=_retry(section.get("retry"), file),
    )


def _text(m: Mapping[str, Any], key: str, file: str, *, required: bool, where: str = "notify") -> str | None:
    value = m.get(key)
    if value is None:
        if required:
            raise SettingsError(file, f"{where}.{key}", "is required")
        return None
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise SettingsError(file, f"{where}.{key}", "must be a non-empty text")
    return str(value).strip()


def _number(m: Mapping[str, Any], key: str, file: str, where: str, default: float, *, least: float) -> float:
    value = m.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < least:
        raise SettingsError(file, f"{where}.{key}", f"must be a number ≥ {least:g}")
    return float(value)


def _channel(name: str, body: Any, file: str) -> Channel:
    where = f"notify.{name}"
    if not isinstance(body, dict):
        raise SettingsError(file, where, f"must be a mapping ({', '.join(_KEYS[name])})")
    for key in body:
        if key not in _KEYS[name]:
            raise SettingsError(file, f"{where}.{key}", f"unknown key (allowed: {', '.join(_KEYS[name])})")
    for key in ("secret_env", "password_env", "url_env"):
        if key in body and (not isinstance(body[key], str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", body[key])):
            raise SettingsError(file, f"{where}.{key}", "must name an environment variable (letters, digits, _)")
    if name == "email":
        _text(body, "host", file, required=True, where=where)
        _text(body, "from", file, required=True, where=where)
        if body.get("tls", "ssl") not in ("ssl", "starttls", "none"):
            raise SettingsError(file, f"{where}.tls", "must be ssl, starttls or none")
        if "port" in body:
            _number(body, "port", file, where, 0, least=1)
    else:
        if ("url" in body) == ("url_env" in body):
            raise SettingsError(file, f"{where}.url", "give the robot's or receiver's address as url or url_env (one of them)")
        if "url" in body and not re.match(r"^https?://", str(body["url"])):
            raise SettingsError(file, f"{where}.url", "must start with http:// or https://")
        if name == "webhook" and "secret_env" not in body:
            raise SettingsError(file, f"{where}.secret_env", "is required: webhooks are signed (Standard Webhooks, a whsec_ secret)")
        if body.get("msgtype", "markdown") not in ("text", "markdown"):
            raise SettingsError(file, f"{where}.msgtype", "must be text or markdown")
    if "ca_file" in body and not Path(str(body["ca_file"])).is_file():
        raise SettingsError(file, f"{where}.ca_file", f"no such file: {str(body['ca_file'])[:200]}")
    rate = body.get("rate_per_minute", ROBOT_RATE if name in ROBOTS else None)
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate < 1):
        raise SettingsError(file, f"{where}.rate_per_minute", "must be a whole number ≥ 1")
    return Channel(name, dict(body), _number(body, "timeout", file, where, 10.0, least=0.1), rate)


def _names(value: Any, file: str, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise SettingsError(file, where, "must be a name or a non-empty list of names")
    return tuple(i.strip() for i in items)


def _routes(raw: Any, channels: Mapping[str, Channel], file: str) -> tuple[Route, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SettingsError(file, "notify.routes", "must be a list of {kinds: […], to: …, via: […]}")
    routes = []
    for i, item in enumerate(raw):
        where = f"notify.routes[{i}]"
        if not isinstance(item, dict):
            raise SettingsError(file, where, "must be a mapping {kinds: […], to: …, via: […]}")
        for key in item:
            if key not in ("kinds", "to", "via"):
                raise SettingsError(file, f"{where}.{key}", "unknown key (allowed: kinds, to, via)")
        kinds = _names(item.get("kinds"), file, f"{where}.kinds")
        to = _names(item.get("to"), file, f"{where}.to")
        for j, t in enumerate(to):
            head, sep, rest = t.partition(":")
            if not (t in ROLES or (sep and head in ("unit", "user") and rest.strip())):
                raise SettingsError(file, f"{where}.to[{j}]", f"'{t[:200]}' is not a recipient (allowed: "
                                                              f"{', '.join(ROLES)}, unit:NAME, user:NAME)")
        via = _names(item.get("via"), file, f"{where}.via")
        for j, v in enumerate(via):
            if v not in channels:
                known = ", ".join(channels) or "none"
                raise SettingsError(file, f"{where}.via[{j}]", f"unknown channel '{v[:200]}' (configured: {known}; "
                                                               f"available: {', '.join(CHANNELS)})")
        routes.append(Route(frozenset(kinds), to, via))
    return tuple(routes)


def _retry(raw: Any, file: str) -> Retry:
    if raw is None:
        return Retry()
    if not isinstance(raw, dict):
        raise SettingsError(file, "notify.retry", "must be a mapping {attempts, first_delay, factor}")
    for key in raw:
        if key not in ("attempts", "first_delay", "factor"):
            raise SettingsError(file, f"notify.retry.{key}", "unknown key (allowed: attempts, first_delay, factor)")
    attempts = raw.get("attempts", 10)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        raise SettingsError(file, "notify.retry.attempts", "must be a whole number from 1 to 100")
    return Retry(attempts=attempts, first_delay=_number(raw, "first_delay", file, "notify.retry", 180.0, least=0),
                 factor=_number(raw, "factor", file, "notify.retry", 2.0, least=1))


# -- what the deliverer checks at start ------------------------------------------------
def resolve_secrets(settings: NotifySettings, env: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Per channel, the secret values its settings name, read from the environment.

    Raises SettingsError naming the key (never the value) when a variable is not set."""
    env = os.environ if env is None else env
    found: dict[str, dict[str, str]] = {}
    for name, channel in settings.channels.items():
        values = {}
        for key, var in channel.secret_names().items():
            value = env.get(var)
            if not value:
                raise SettingsError(settings.file, f"notify.{name}.{key}", f"environment variable {var} is not set")
            values[key] = value
        if name == "webhook":
            from duban.delivery.signing import webhook_key

            try:
                webhook_key(values["secret_env"])
            except ValueError as exc:
                raise SettingsError(settings.file, f"notify.{name}.secret_env",
                                    f"{channel.options['secret_env']} {exc}") from None
        if "url_env" in values and not re.match(r"^https?://", values["url_env"]):
            raise SettingsError(settings.file, f"notify.{name}.url_env",
                                f"{channel.options['url_env']} must hold an http:// or https:// address")
        found[name] = values
    return found


def check_recipients(settings: NotifySettings, units: Iterable[str], users: Iterable[str]) -> None:
    """Every `unit:NAME` and `user:NAME` in the routes names a known unit or user."""
    known_units, known_users = set(units), set(users)
    for i, route in enumerate(settings.routes):
        for j, t in enumerate(route.to):
            head, _, rest = t.partition(":")
            rest = rest.strip()
            if head == "unit" and rest and rest not in known_units:
                raise SettingsError(settings.file, f"notify.routes[{i}].to[{j}]",
                                    f"unknown unit '{rest[:200]}' (known: {', '.join(sorted(known_units)) or 'none'})")
            if head == "user" and rest and rest not in known_users:
                raise SettingsError(settings.file, f"notify.routes[{i}].to[{j}]",
                                    f"unknown user '{rest[:200]}' (add with: duban user add {rest[:50]} --role … --email …)")
