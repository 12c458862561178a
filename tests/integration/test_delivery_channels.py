"""Each channel against a real receiver on 127.0.0.1: what arrives (parsed back and its
signature checked by the receiver), retries, failures, the rate limit, and secrets kept out of
every attempt, event and log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from duban.delivery.deliverer import Deliverer
from duban.delivery.settings import NotifySettings
from duban.delivery.status import status
from duban.service.app import App
from duban.storage.tables import DELIVERIES, DELIVERY_ATTEMPTS
from tests.integration.delivery_receivers import WEBHOOK_SECRET, closed_port, http_receiver, smtp_receiver
from tests.integration.delivery_setup import RED_CARD, SECRETS, TZ, events, new_app, notify, red_card, rows


@pytest.fixture(autouse=True)
def quiet_smtp_server() -> None:
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # the test SMTP server's own chatter


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    a = new_app(f"sqlite:///{tmp_path / 'd.db'}")
    yield a
    a.db.dispose()


OPEN: list[Deliverer] = []


@pytest.fixture(autouse=True)
def close_deliverers() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def deliverer(app: App, settings: NotifySettings, secrets: dict[str, dict[str, str]] | None = None) -> Deliverer:
    node = Deliverer(app, settings, SECRETS if secrets is None else secrets, "node-a", draw=lambda: 0.5)
    OPEN.append(node)
    return node


class TestWhatArrives:
    def test_email_reaches_every_mailbox_of_the_unit(self, app: App) -> None:
        """Subject, Chinese body naming the case, deadline, lateness and link, and a Message-ID per delivery."""
        with http_receiver() as rx, smtp_receiver() as smtp:
            settings = notify(rx, smtp.port, via=["email"])
            red_card(app, settings)
            app.clock.advance(hours=5)  # sent later than the notice: the lateness is counted at sending
            result = deliverer(app, settings).run_once()
            assert (result.sent, result.failed) == (2, 0)
            mails = sorted(smtp.messages, key=lambda m: str(m["To"]))
        assert [str(m["To"]) for m in mails] == ["fgj2@example.gov.cn", "fgj@example.gov.cn"]
        body = mails[0].get_content()
        assert mails[0]["Subject"] == "【催办通知】老旧小区改造1"
        assert "区发改局：" in body and "“老旧小区改造1”" in body and "2026-11-30 23:59" in body
        assert "已超期14小时" in body  # due 23:59:59 on the 30th, sent at 14:00 on 1 December
        assert "https://duban.example.gov.cn/cases/1" in body
        ids = {m["Message-ID"] for m in mails}
        assert ids == {f"<msg_duban_{d['id']}@example.gov.cn>" for d in rows(app, DELIVERIES)}
        assert all(f"通知编号：{m['Message-ID'][1:].split('@')[0]}" in m.get_content() for m in mails)
        assert {d["status"] for d in rows(app, DELIVERIES)} == {"sent"}

    def test_webhook_and_robots_are_signed_as_each_service_checks(self, app: App) -> None:
        with http_receiver(now=lambda: int(RED_CARD.timestamp())) as rx, smtp_receiver() as smtp:
            settings = notify(rx, smtp.port, via=["webhook", "dingtalk", "wecom", "feishu"])
            red_card(app, settings)
            result = deliverer(app, settings).run_once()
            got = {r.path: r for r in rx.received}
        assert result.sent == 4 and sorted(got) == ["/dingtalk", "/feishu", "/webhook", "/wecom"]
        assert all(r.verified for r in got.values()), {p: r.verified for p, r in got.items()}
        ids = {d["channel"]: f"msg_duban_{d['id']}" for d in rows(app, DELIVERIES)}
        assert {p.strip("/"): r.delivery_id for p, r in got.items()} == ids  # webhook-id, and each robot's last line
        hook = got["/webhook"].json
        assert hook["type"] == "notice.delivery" and hook["data"]["case_id"] == 1 and hook["data"]["kind"] == "催办通知"
        assert hook["data"]["url"] == "https://duban.example.gov.cn/cases/1"
        assert got["/dingtalk"].json["msgtype"] == "markdown" and "已超期" in got["/dingtalk"].text
        assert got["/wecom"].json["msgtype"] == "text"  # msgtype: text in these settings
        assert "老旧小区改造1" in got["/feishu"].text and got["/feishu"].json["msg_type"] == "text"

    def test_every_attempt_is_recorded_and_the_end_is_an_audit_event(self, app: App) -> None:
        with http_receiver(fail_first=1, now=lambda: int(RED_CARD.timestamp())) as rx, smtp_receiver() as smtp:
            settings = notify(rx, smtp.port, via=["webhook"], retry={"attempts": 3, "first_delay": 0})
            red_card(app, settings)
            deliverer(app, settings).run_once()
        attempts = rows(app, DELIVERY_ATTEMPTS)
        assert [(a["attempt"], a["ok"], a["status_code"]) for a in attempts] == [(1, False, 503), (2, True, 200)]
        assert all(a["channel"] == "webhook" and a["recipient"] == "区发改局" and a["duration_ms"] >= 0 for a in attempts)
        assert attempts[0]["error"] == "HTTP 503"
        (sent,) = events(app, "notice_sent")
        assert sent["case_id"] == 1 and sent["actor"] == "system" and sent["note"] == "催办通知已送达区发改局（Webhook）"
        assert sent["data"]["attempts"] == 2 and sent["data"]["delivery_uid"] == "msg_duban_1"
        assert rx.ids == ["msg_duban_1"]  # the failed request was refused before it was counted


class TestFailures:
    @pytest.mark.parametrize(("kind", "expected"), [
        ("500", "HTTP 500"), ("503", "HTTP 503"), ("close", "RemoteProtocolError"), ("timeout", "ReadTimeout"),
        ("refused", "ConnectError"),
    ])
    def test_a_failing_receiver_is_retried_then_failed_and_visible(self, app: App, kind: str, expected: str) -> None:
        """Every attempt recorded, back-off between them, `failed` after the last, in notify status."""
        receiver: dict[str, Any] = {"fail_first": 99}
        if kind in ("500", "503"):
            receiver["fail_status"] = int(kind)
        elif kind == "close":
            receiver["fail_mode"] = "close"
        elif kind == "timeout":
            receiver = {"delay": 0.6}
        with http_receiver(**receiver) as rx, smtp_receiver() as smtp:
            options = {"timeout": 0.2} if kind == "timeout" else {}
            if kind == "refused":
                options = {"url": f"http://127.0.0.1:{closed_port()}/hook"}
            settings = notify(rx, smtp.port, via=["webhook"], retry={"attempts": 3, "first_delay": 60},
                              webhook=options)
            red_card(app, settings)
            node = deliverer(app, settings)
            first = node.run_once()
            assert (first.attempts, first.retrying) == (1, 1)
            (d,) = rows(app, DELIVERIES)
            assert d["status"] == "retrying" and d["next_at"] == RED_CARD + timedelta(seconds=60)  # jitter 0.5: no stretch
            assert node.run_once().attempts == 0  # not due again before its back-off
            for wait in (60, 120):
                app.clock.advance(seconds=wait)
                node.run_once()
        (d,) = rows(app, DELIVERIES)
        assert d["status"] == "failed" and d["attempts"] == 3 and expected in (d["last_error"] or "")
        assert [a["attempt"] for a in rows(app, DELIVERY_ATTEMPTS)] == [1, 2, 3]
        assert all(expected in a["error"] for a in rows(app, DELIVERY_ATTEMPTS))
        (failed,) = events(app, "notice_failed")
        assert failed["note"] == "催办通知未能送达区发改局（Webhook，3次尝试）"
        with app.db.read() as conn:
            shown = status(conn, app.clock.now(), TZ)
        assert shown["channels"] == [{"channel": "webhook", "label": "Webhook", "pending": 0, "retrying": 0,
                                      "failed": 1, "sent": 0}]
        assert shown["failed"][0]["error"] == d["last_error"] and shown["oldest_undelivered"] is None

    def test_a_unit_without_a_mailbox_fails_at_once(self, app: App) -> None:
        """Nobody to mail: one delivery, failed on its first attempt, saying how to fix it."""
        with http_receiver() as rx, smtp_receiver() as smtp:
            settings = notify(rx, smtp.port, via=["email"])
            red_card(app, settings, unit="区财政局")
            result = deliverer(app, settings).run_once()
            assert smtp.messages == []
        (d,) = rows(app, DELIVERIES)
        assert result.failed == 1 and d["status"] == "failed" and d["address"] is None
        assert "区财政局 无人登记邮箱" in d["last_error"] and "--email" in d["last_error"]

    def test_oldest_undelivered_while_retrying(self, app: App) -> None:
        with http_receiver(fail_first=99) as rx, smtp_receiver() as smtp:
            settings = notify(rx, smtp.port, via=["webhook"])
            red_card(app, settings, cases=2)
            deliverer(app, settings).run_once()
        with app.db.read() as conn:
            shown = status(conn, RED_CARD + timedelta(hours=2), TZ)
        assert shown["totals"]["retrying"] == 2
        oldest = shown["oldest_undelivered"]
        assert oldest["notice_id"] == 3 and oldest["attempts"] == 1 and oldest["waiting_seconds"] == 7200


class TestLimitsAndSecrets:
    def test_a_robot_sends_at_most_its_rate_then_waits_for_the_clock(self, app: App) -> None:
        """25 notices to one 钉钉 robot (20 a minute): 20 go now, 5 wait without counting an attempt."""
        with http_receiver() as rx, smtp_receiver() as smtp:
            settings = notify(rx, smtp.port, via=["dingtalk"])
            red_card(app, settings, cases=25)
            node = deliverer(app, settings)
            now = node.run_once()
            assert (now.sent, now.deferred, len(rx.received)) == (20, 5, 20)
            waiting = [d for d in rows(app, DELIVERIES) if d["status"] == "pending"]
            assert len(waiting) == 5 and all(d["attempts"] == 0 and d["next_at"] > RED_CARD for d in waiting)
            app.clock.advance(seconds=15)  # five more tokens
            assert node.run_once().sent == 5
        assert len(rows(app, DELIVERY_ATTEMPTS)) == 25 and len(set(rx.ids)) == 25

    def test_no_secret_in_attempts_events_or_logs(self, app: App, caplog: pytest.LogCaptureFixture) -> None:
        """A robot answering with a sign error, a dead webhook: the errors say why without the key, token or sign."""
        caplog.set_level(logging.DEBUG)
        with http_receiver() as rx, smtp_receiver() as smtp:
            settings = notify(rx, smtp.port, via=["dingtalk", "wecom", "webhook"], retry={"attempts": 1},
                              webhook={"url": f"http://127.0.0.1:{closed_port()}/hook?token=hook-token"})
            red_card(app, settings)
            secrets = {**SECRETS, "dingtalk": {"secret_env": "SECwrong"}}
            result = deliverer(app, settings, secrets).run_once()
            assert (result.sent, result.failed) == (1, 2)  # 企业微信 took it; 钉钉 refused the sign; nobody at the hook
        stored = json.dumps([rows(app, DELIVERIES), rows(app, DELIVERY_ATTEMPTS), events(app, "notice_failed"),
                             events(app, "notice_sent")], default=str, ensure_ascii=False)
        assert "errcode 310000: sign not match" in stored and "ConnectError" in stored
        for secret in ("SECwrong", WEBHOOK_SECRET, "robot-token", "wecom-test-key", "hook-token", "sign="):
            assert secret not in stored
            assert secret not in caplog.text


def _self_signed(tmp: Path) -> Path:
    """A certificate for 127.0.0.1, trusted by the deliverer through the channel's `ca_file`."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)  # the certificate's validity is checked by ssl against the wall clock
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    pem = tmp / "smtp.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return pem


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_email_over_tls(app: App, tmp_path: Path, tls: str) -> None:
    """STARTTLS (the server refuses mail before it) and implicit TLS, the office's CA trusted via ca_file."""
    import ssl

    from aiosmtpd.controller import Controller

    from tests.integration.delivery_receivers import SmtpReceiver

    pem = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem)
    box = SmtpReceiver(closed_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            from email import message_from_bytes, policy

            box.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
            return "250 OK"

    extra: dict[str, Any] = ({"tls_context": context, "require_starttls": True} if tls == "starttls"
                             else {"ssl_context": context})
    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port, **extra)
    controller.start()
    try:
        with http_receiver() as rx:
            settings = notify(rx, box.port, via=["email"], email={"tls": tls, "ca_file": str(pem)})
            red_card(app, settings)
            result = deliverer(app, settings).run_once()
    finally:
        controller.stop()
    assert result.sent == 2, rows(app, DELIVERY_ATTEMPTS)
    assert sorted(str(m["To"]) for m in box.messages) == ["fgj2@example.gov.cn", "fgj@example.gov.cn"]
