"""Real receivers on 127.0.0.1 for the delivery tests: an HTTP server standing in for the
office's webhook and the 钉钉 / 企业微信 / 飞书 robots, an SMTP server (aiosmtpd), and a port
nobody listens on.

The HTTP receiver checks every signature itself, written from each service's documentation
(not with duban's own signing code), so a mistake in duban's signing fails the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"duban-test-webhook-key-32-bytes!").decode()
DINGTALK_SECRET = "SECdingtalk-test-secret"
FEISHU_SECRET = "feishu-test-secret"


def _b64_hmac(key: bytes, msg: bytes) -> str:
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    delivery_id: str | None  # the stable id: webhook-id, or the 通知编号 line of a robot message
    text: str = ""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Answers POSTs on /webhook, /dingtalk, /wecom and /feishu."""

    fail_first: int = 0  # answer this many requests with `fail_status` (or `fail_mode`) first
    fail_status: int = 503
    fail_mode: str = "status"  # status | close (drop the connection without answering)
    delay: float = 0.0  # a slow receiver: seconds before answering
    now: Callable[[], int] = lambda: int(time.time())  # the webhook timestamp's reference (the tests' clock)
    received: list[Received] = field(default_factory=list)
    answered: int = 0
    arrived: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    hold_after: int | None = None  # requests after this many wait until `release` (a receiver that hangs)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    @property
    def ids(self) -> list[str | None]:
        with self.lock:
            return [r.delivery_id for r in self.received]

    # -- checks ----------------------------------------------------------------------
    def _check(self, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> Received:
        verified, delivery_id, text = False, None, ""
        if path == "/webhook":
            msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "0")
            key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
            expected = "v1," + _b64_hmac(key, f"{msg_id}.{stamp}.".encode() + body)
            verified = (any(hmac.compare_digest(expected, s) for s in headers.get("webhook-signature", "").split())
                        and abs(self.now() - int(stamp)) <= 300)
            delivery_id = msg_id
            text = json.loads(body)["data"]["text"]
        else:
            payload = json.loads(body)
            if path == "/dingtalk":
                stamp, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
                verified = bool(stamp) and hmac.compare_digest(
                    _b64_hmac(DINGTALK_SECRET.encode(), f"{stamp}\n{DINGTALK_SECRET}".encode()), sign)
                text = payload.get("markdown", {}).get("text") or payload.get("text", {}).get("content", "")
            elif path == "/feishu":
                stamp, sign = str(payload.get("timestamp", "")), str(payload.get("sign", ""))
                verified = bool(stamp) and hmac.compare_digest(
                    _b64_hmac(f"{stamp}\n{FEISHU_SECRET}".encode(), b""), sign)
                text = payload["content"]["text"]
            else:  # wecom: the key in the URL is the only credential
                verified = query.get("key") == ["wecom-test-key"]
                text = payload.get("markdown", {}).get("content") or payload.get("text", {}).get("content", "")
            for line in text.splitlines():
                if "通知编号：" in line:
                    delivery_id = line.split("通知编号：", 1)[1].strip()
        return Received(path, headers, body, verified, delivery_id, text)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.arrived += 1
                    hold = receiver.hold_after is not None and receiver.arrived > receiver.hold_after
                if hold:
                    receiver.release.wait(30)
                if receiver.delay:
                    time.sleep(receiver.delay)
                parts = urlsplit(self.path)
                with receiver.lock:
                    receiver.answered += 1
                    failing = receiver.answered <= receiver.fail_first
                if failing and receiver.fail_mode == "close":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if failing:
                    self._answer(receiver.fail_status, b'{"error":"try later"}')
                    return
                got = receiver._check(parts.path, parse_qs(parts.query),
                                      {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver.lock:
                    receiver.received.append(got)
                if not got.verified:
                    self._answer(401 if parts.path == "/webhook" else 200,
                                 b'{"errcode":310000,"errmsg":"sign not match","code":19021}')
                    return
                self._answer(200, b'{"errcode":0,"errmsg":"ok","code":0,"msg":"success"}')

            def _answer(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender is gone (killed, or it timed out): what it sent was still received

        return Handler


@contextmanager
def http_receiver(**kw: Any) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(**kw)
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    server.daemon_threads = True
    receiver.port = server.server_address[1]  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()


@dataclass
class SmtpReceiver:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self, box: SmtpReceiver) -> None:
            self.box = box

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.box.messages.append(message)
            return "250 OK"

    box = SmtpReceiver(closed_port())  # aiosmtpd checks it is up by connecting: it needs the port beforehand
    controller = Controller(Handler(box), hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
