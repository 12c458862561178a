"""The channels a notice goes out by (SPEC §14): email over SMTP, a Standard Webhooks POST,
and the 钉钉 / 企业微信 / 飞书 group robots. One `send` is one attempt; it never raises
for a receiver's fault, it answers `Sent` (ok, status code, error). Every error text passes
through `Redactor`, so a secret, a robot's URL or its key never reaches an attempt row, a
log line or an event.

HTTP goes through one `httpx.Client` per deliverer (kept-alive connections, each channel's
own timeout); SMTP keeps one connection per deliverer and opens a new one after a failure.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Protocol

import httpx

from duban.delivery import signing
from duban.delivery.messages import Message
from duban.delivery.settings import Channel as ChannelSettings
from duban.delivery.store import Due

ERROR_CHARS = 200


@dataclass(frozen=True)
class Sent:
    ok: bool
    status_code: int | None = None
    error: str | None = None


class Redactor:
    """Replaces every secret value (and each robot URL, whose query holds its token) with ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text[:ERROR_CHARS]


class Sender(Protocol):
    name: str

    def send(self, message: Message, due: Due, now: datetime) -> Sent: ...

    def close(self) -> None: ...


def _tls(options: Mapping[str, Any]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(options["ca_file"]) if options.get("ca_file") else None)


# -- HTTP --------------------------------------------------------------------------
class HttpSender:
    """A POST of JSON; subclasses say what the body and URL are and what counts as accepted."""

    name = "webhook"

    def __init__(self, settings: ChannelSettings, secrets: Mapping[str, str], client: httpx.Client) -> None:
        self.settings = settings
        self.url = secrets.get("url_env") or str(settings.options["url"])
        self.secret = secrets.get("secret_env")
        self.client = client
        self.redact = Redactor([*secrets.values(), self.url, self.url.partition("?")[2]])
        self.timeout = httpx.Timeout(settings.timeout)

    def request(self, message: Message, due: Due, now: datetime) -> tuple[str, bytes, dict[str, str]]:
        raise NotImplementedError

    def accepted(self, response: httpx.Response) -> str | None:
        """None when the receiver took the message, else why not."""
        return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"

    def send(self, message: Message, due: Due, now: datetime) -> Sent:
        url, body, headers = self.request(message, due, now)
        try:
            response = self.client.post(url, content=body, timeout=self.timeout,
                                        headers={"content-type": "application/json; charset=utf-8", **headers})
        except httpx.HTTPError as exc:
            return Sent(False, None, self.redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__))
        why = self.accepted(response)
        return Sent(why is None, response.status_code, None if why is None else self.redact(why))

    def close(self) -> None:
        """The client belongs to the deliverer."""


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookSender(HttpSender):
    """Standard Webhooks: {type, timestamp, data} signed over "id.timestamp.body"."""

    name = "webhook"

    def request(self, message: Message, due: Due, now: datetime) -> tuple[str, bytes, dict[str, str]]:
        body = _json({"type": "notice.delivery", "timestamp": now.isoformat(), "data": message.data})
        assert self.secret is not None  # settings require it
        return self.url, body, signing.webhook_headers(self.secret, message.uid, int(now.timestamp()), body)


class RobotSender(HttpSender):
    """A group robot answers 200 with an error code of its own when it refuses a message."""

    code_keys: tuple[str, ...] = ("errcode",)

    def accepted(self, response: httpx.Response) -> str | None:
        why = super().accepted(response)
        if why is not None:
            return why
        try:
            answer = response.json()
        except ValueError:
            return None
        for key in self.code_keys:
            if isinstance(answer, dict) and answer.get(key) not in (None, 0):
                message = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""
                return f"{key} {answer.get(key)}: {str(message)[:120]}"
        return None

    @property
    def markdown(self) -> bool:
        return bool(self.settings.options.get("msgtype", "markdown") == "markdown")


class DingTalkSender(RobotSender):
    name = "dingtalk"

    def request(self, message: Message, due: Due, now: datetime) -> tuple[str, bytes, dict[str, str]]:
        url = signing.dingtalk_url(self.url, self.secret, int(now.timestamp() * 1000))
        if self.markdown:
            body = {"msgtype": "markdown", "markdown": {"title": message.subject, "text": message.markdown}}
        else:
            body = {"msgtype": "text", "text": {"content": f"{message.subject}\n{message.text}"}}
        return url, _json(body), {}


class WeComSender(RobotSender):
    name = "wecom"

    def request(self, message: Message, due: Due, now: datetime) -> tuple[str, bytes, dict[str, str]]:
        if self.markdown:
            body = {"msgtype": "markdown", "markdown": {"content": message.markdown}}
        else:
            body = {"msgtype": "text", "text": {"content": f"{message.subject}\n{message.text}"}}
        return self.url, _json(body), {}


class FeishuSender(RobotSender):
    name = "feishu"
    code_keys = ("code", "StatusCode")

    def request(self, message: Message, due: Due, now: datetime) -> tuple[str, bytes, dict[str, str]]:
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": f"{message.subject}\n{message.text}"}}
        if self.secret:
            stamp = int(now.timestamp())
            body = {"timestamp": str(stamp), "sign": signing.feishu_sign(self.secret, stamp), **body}
        return self.url, _json(body), {}


# -- email -------------------------------------------------------------------------
class EmailSender:
    """SMTP with implicit TLS (`tls: ssl`, port 465), STARTTLS (587) or none (a local relay)."""

    name = "email"

    def __init__(self, settings: ChannelSettings, secrets: Mapping[str, str]) -> None:
        o = settings.options
        self.settings = settings
        self.tls = str(o.get("tls", "ssl"))
        self.host = str(o["host"])
        self.port = int(o.get("port") or {"ssl": 465, "starttls": 587}.get(self.tls, 25))
        self.user = str(o["user"]) if o.get("user") else None
        self.password = secrets.get("password_env")
        self.sender = str(o["from"])
        self.domain = parseaddr(self.sender)[1].rpartition("@")[2] or "duban.local"
        self.redact = Redactor(secrets.values())
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        timeout = self.settings.timeout
        smtp: smtplib.SMTP
        if self.tls == "ssl":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=_tls(self.settings.options))
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=timeout)
            if self.tls == "starttls":
                smtp.starttls(context=_tls(self.settings.options))
        if self.user and self.password:
            smtp.login(self.user, self.password)
        return smtp

    def compose(self, message: Message, due: Due, now: datetime) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        assert due.address is not None
        mail["To"] = Address(addr_spec=due.address)
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(now)
        mail["Message-ID"] = f"<{message.uid}@{self.domain}>"
        mail["X-Duban-Delivery"] = message.uid
        mail.set_content(message.text)
        return mail

    def send(self, message: Message, due: Due, now: datetime) -> Sent:
        if not due.address:
            return Sent(False, None, f"{due.recipient} 无人登记邮箱（duban user add … --email）")
        try:
            mail = self.compose(message, due, now)
        except (ValueError, IndexError) as exc:  # a malformed address in the directory
            return Sent(False, None, self.redact(f"bad address {due.address[:100]}: {exc}"))
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            refused = self._smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            self.close()
            return Sent(False, exc.smtp_code, self.redact(f"{type(exc).__name__}: {exc.smtp_code} {exc.smtp_error!r}"))
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            return Sent(False, None, self.redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__))
        if refused:
            return Sent(False, None, self.redact(f"refused: {refused}"))
        return Sent(True, 250)

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


_HTTP = {"webhook": WebhookSender, "dingtalk": DingTalkSender, "wecom": WeComSender, "feishu": FeishuSender}


def build(settings: ChannelSettings, secrets: Mapping[str, str], client: httpx.Client) -> Sender:
    if settings.name == "email":
        return EmailSender(settings, secrets)
    return _HTTP[settings.name](settings, secrets, client)


def http_client(ca_files: Iterable[str]) -> httpx.Client:
    """One client for every HTTP channel (an office CA file, when given, is trusted too)."""
    import logging

    for name in ("httpx", "httpcore"):  # their INFO lines carry the full URL: a robot's token, a 企业微信 key
        logging.getLogger(name).setLevel(logging.WARNING)
    files = sorted(set(ca_files))
    verify: ssl.SSLContext | bool = True
    if files:
        context = ssl.create_default_context()
        for f in files:
            context.load_verify_locations(cafile=f)
        verify = context
    return httpx.Client(verify=verify, follow_redirects=False)  # HTTPS_PROXY / NO_PROXY apply, as an intranet may need
