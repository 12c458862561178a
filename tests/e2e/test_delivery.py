"""Notices delivered, from the command line (SPEC §14): settings refused at start, what `notice
list`, `notify status` and `report accountability` show, printed notices, mailboxes."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pypdf import PdfReader

from tests.conftest import Duban, row_counts
from tests.integration.delivery_receivers import HttpReceiver, SmtpReceiver, http_receiver, smtp_receiver
from tests.integration.delivery_setup import ENV, RED_CARD, TZ, notify_section

DAY_AFTER = "2026-12-01T09:00"


def counts(url: str) -> dict[str, int]:
    """`row_counts` and the delivery tables: what a refused command must leave as it was."""
    from sqlalchemy import create_engine, func, select, table

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            mine = {t: int(conn.execute(select(func.count()).select_from(table(t))).scalar_one())
                    for t in ("deliveries", "delivery_attempts", "notice_numbers")}
    finally:
        engine.dispose()
    return {**row_counts(url), **mine}


@pytest.fixture(autouse=True)
def quiet_smtp_server() -> None:
    logging.getLogger("mail.log").setLevel(logging.WARNING)


@pytest.fixture
def receivers() -> Iterator[tuple[HttpReceiver, SmtpReceiver]]:
    with http_receiver(now=lambda: int(RED_CARD.timestamp())) as rx, smtp_receiver() as smtp:
        yield rx, smtp


class Office:
    """The `duban` fixture's office with a settings file and the variables it names."""

    def __init__(self, duban: Duban, tmp: Path, section: dict[str, Any]) -> None:
        self.duban, self.file = duban, tmp / "office.yaml"
        self.write(section)
        self.env = {**ENV, "DUBAN_SETTINGS": str(self.file)}

    def write(self, section: dict[str, Any]) -> None:
        self.file.write_text(yaml.safe_dump({"notify": section}, allow_unicode=True), encoding="utf-8")

    def __call__(self, *args: str, now: str = DAY_AFTER, **kw: Any) -> Any:
        return self.duban(*args, now=now, env={**self.env, **kw.pop("env", {})}, **kw)

    def ok(self, *args: str, now: str = DAY_AFTER, **kw: Any) -> Any:
        return self.duban.ok(*args, now=now, env={**self.env, **kw.pop("env", {})}, **kw)

    def lapse(self, title: str = "推进老旧小区改造") -> None:
        """A case due 2026-11-30 accepted and left to lapse: a 催办通知 to 区发改局 on 1 December."""
        case = self.ok("case", "open", "supervision", "--title", title, "--unit", "区发改局", "--due", "2026-11-30",
                       "--json", now="2026-11-02T09:00", actor="wang").json
        self.ok("case", "fire", str(case["id"]), "accept", now="2026-11-02T10:00", actor="fgj")
        self.ok("tick", now="2026-11-28T09:00")  # yellow card (预警提醒: not routed)
        self.ok("tick")


@pytest.fixture
def office(duban: Duban, tmp_path: Path, receivers: tuple[HttpReceiver, SmtpReceiver]) -> Office:
    rx, smtp = receivers
    duban.ok("user", "add", "fgj-mail", "--role", "unit", "--unit", "区发改局", "--email", "fgj@example.gov.cn")
    section = notify_section(rx, smtp.port, via=["email", "webhook", "dingtalk"])
    section["routes"].append({"kinds": ["通报"], "to": ["leader", "user:wang"], "via": ["webhook"]})
    return Office(duban, tmp_path, section)


class TestRefusedAtStart:
    @pytest.mark.parametrize(("change", "key", "says"), [
        (lambda s: s["routes"][0].__setitem__("via", ["email", "sms"]), "notify.routes[0].via[1]", "unknown channel 'sms'"),
        (lambda s: s.__setitem__("fax", {"number": "1"}), "notify.fax", "unknown key or channel"),
        (lambda s: s["routes"].append({"kinds": ["通报"], "to": "unit:区不存在局", "via": ["email"]}),
         "notify.routes[2].to", "unknown unit '区不存在局'"),
        (lambda s: s["routes"].append({"kinds": ["通报"], "to": "user:nobody", "via": ["email"]}),
         "notify.routes[2].to", "unknown user 'nobody'"),
        (lambda s: s["dingtalk"].__setitem__("secret_env", "DUBAN_NOT_SET"), "notify.dingtalk.secret_env",
         "environment variable DUBAN_NOT_SET is not set"),
        (lambda s: s["webhook"].__setitem__("tls", "yes"), "notify.webhook.tls", "unknown key"),
    ], ids=["unknown-channel", "unknown-section", "unknown-unit", "unknown-user", "missing-secret", "unknown-option"])
    @pytest.mark.parametrize("command", [("notify", "run", "--once"), ("scheduler", "run", "--once")])
    def test_exit_2_naming_the_key_and_nothing_changed(self, office: Office, sqlite_url: str, change: Any, key: str,
                                                       says: str, command: tuple[str, ...]) -> None:
        office.lapse()
        section = yaml.safe_load(office.file.read_text(encoding="utf-8"))["notify"]
        change(section)
        office.write(section)
        before = counts(sqlite_url)
        run = office(*command, now="2026-12-20T09:00")  # timers are due: a started scheduler would fire them
        assert run.code == 2, run.stderr
        assert key in run.stderr and says in run.stderr and "Traceback" not in run.stderr
        assert counts(sqlite_url) == before

    def test_a_secret_value_is_never_shown(self, office: Office) -> None:
        """A webhook secret that is not one: the error names the variable, not what it holds."""
        run = office("notify", "run", "--once", env={"WH": "hunter2-not-a-whsec"})
        assert run.code == 2 and "notify.webhook.secret_env" in run.stderr and "WH" in run.stderr
        assert "hunter2" not in run.stderr

    def test_no_notify_section(self, duban: Duban) -> None:
        run = duban("notify", "run", "--once", env={"DUBAN_SETTINGS": ""})
        assert run.code == 2 and "DUBAN_SETTINGS" in run.stderr

    def test_a_broken_section_never_blocks_a_step(self, office: Office, sqlite_url: str) -> None:
        """Routes that cannot be read: the ladder still fires and the notice is in the outbox, undelivered."""
        office.file.write_text("notify: {routes: [{kinds: [催办通知], to: unit, via: [sms]}]}\n", encoding="utf-8")
        office.lapse()
        rows = office.ok("notice", "list", "--json").json
        assert [r["kind"] for r in rows] == ["预警提醒", "催办通知"] and all(r["deliveries"] == [] for r in rows)
        assert "未投递" in office.ok("notice", "list").stdout
        assert counts(sqlite_url)["deliveries"] == 0


class TestDelivered:
    def test_notify_run_then_notice_list_status_and_the_brief(self, office: Office,
                                                              receivers: tuple[HttpReceiver, SmtpReceiver]) -> None:
        rx, smtp = receivers
        office.lapse()
        assert "待发送" in office.ok("notify", "status").stdout
        run = office.ok("notify", "run", "--once")
        assert "送达 3，重试中 0，失败 0" in run.stdout and "催办通知已送达区发改局（邮件 fgj@example.gov.cn）" in run.stdout
        assert [m["To"] for m in smtp.messages] == ["fgj@example.gov.cn"]
        assert sorted(r.path for r in rx.received) == ["/dingtalk", "/webhook"] and all(r.verified for r in rx.received)

        warning, notice = office.ok("notice", "list", "--json").json
        assert warning["kind"] == "预警提醒" and warning["deliveries"] == [] and notice["kind"] == "催办通知"
        assert {(d["channel"], d["status"]) for d in notice["deliveries"]} == {
            ("email", "sent"), ("webhook", "sent"), ("dingtalk", "sent")}
        assert "邮件已送达，Webhook已送达，钉钉已送达" in office.ok("notice", "list").stdout

        shown = office.ok("notify", "status", "--json").json
        assert shown["totals"] == {"pending": 0, "retrying": 0, "failed": 0, "sent": 3}
        assert shown["oldest_undelivered"] is None
        assert "钉钉：待发送 0，重试中 0，失败 0，已送达 1" in office.ok("notify", "status").stdout

        brief = office.ok("report", "accountability", "--case", "1", "--json").json
        told = brief["data"]["cases"][0]["deliveries"] if "data" in brief else brief["cases"][0]["deliveries"]
        assert {(d["recipient"], d["channel_label"], d["status_label"]) for d in told} == {
            ("区发改局", "邮件", "已送达"), ("区发改局", "Webhook", "已送达"), ("区发改局", "钉钉", "已送达")}
        text = office.ok("report", "accountability", "--case", "1").stdout
        assert "送达" in text and "fgj@example.gov.cn" in text

    def test_the_scheduler_delivers_beside_its_sweep(self, office: Office,
                                                     receivers: tuple[HttpReceiver, SmtpReceiver]) -> None:
        rx, _ = receivers
        office.ok("case", "open", "supervision", "--title", "河道整治", "--unit", "区发改局", "--due", "2026-11-30",
                  now="2026-11-02T09:00", actor="wang")
        office.ok("case", "fire", "1", "accept", now="2026-11-02T10:00", actor="fgj")
        office.ok("scheduler", "run", "--once", now="2026-11-28T09:00")
        assert rx.received == []  # 预警提醒 is routed nowhere
        office.ok("scheduler", "run", "--once")
        assert len(rx.received) == 2 and all(r.verified for r in rx.received)  # 催办通知: webhook and 钉钉

    def test_a_bulletin_goes_to_the_leader_and_a_named_user_once(self, office: Office,
                                                                 receivers: tuple[HttpReceiver, SmtpReceiver]) -> None:
        """通报 goes to the leader and the office (two notices); `user:wang` gets one copy, not two."""
        rx, _ = receivers
        rx.now = lambda: int(datetime(2026, 12, 20, 9, tzinfo=TZ).timestamp())
        office.lapse()
        office.ok("tick", now="2026-12-20T09:00")
        office.ok("notify", "run", "--once", now="2026-12-20T09:00", env={})
        bulletins = [r for r in rx.received if r.path == "/webhook" and r.json["data"]["kind"] == "通报"]
        assert sorted(r.json["data"]["recipient"] for r in bulletins) == ["leader", "wang"]


class TestPrinted:
    def test_the_pdf_reads_back_with_its_title_and_a_number_kept_on_reprint(self, office: Office,
                                                                            tmp_path: Path) -> None:
        office.lapse("推进老旧小区改造")
        office.lapse("背街小巷整治")
        # Each lapse writes a 预警提醒 then a 催办通知: notices 2 and 4 are the 催办通知 of the two cases.
        first = office.ok("notice", "print", "2", "--out", str(tmp_path / "n2.pdf"), "--json").json
        assert first["number"] == "督办〔2026〕1号" and first["title"] == "催办通知书"
        text = "".join(p.extract_text() for p in PdfReader(tmp_path / "n2.pdf").pages).replace("\n", "")
        for expected in ("催办通知书", "督办〔2026〕1号", "推进老旧小区改造", "区发改局", "2026年11月30日", "区委督查室",
                         "已超期", "2026年12月01日"):
            assert expected in text, expected
        second = office.ok("notice", "print", "4", "--out", str(tmp_path / "n4.pdf"), "--json").json
        assert second["number"] == "督办〔2026〕2号" and "背街小巷整治" in PdfReader(tmp_path / "n4.pdf").pages[0].extract_text()
        again = office.ok("notice", "print", "2", "--out", str(tmp_path / "again.pdf"), "--json").json
        assert again["number"] == "督办〔2026〕1号"
        assert (tmp_path / "again.pdf").read_bytes() == (tmp_path / "n2.pdf").read_bytes()  # a reprint is the same document

    def test_bad_print_requests(self, office: Office, tmp_path: Path, sqlite_url: str) -> None:
        office.lapse()
        before = counts(sqlite_url)
        missing = office("notice", "print", "99", "--out", str(tmp_path / "x.pdf"))
        assert missing.code == 3 and "no notice 99" in missing.stderr
        fifo = tmp_path / "pipe.pdf"
        os.mkfifo(fifo)
        refused = office("notice", "print", "1", "--out", str(fifo))
        assert refused.code == 2 and "not a regular file" in refused.stderr
        assert counts(sqlite_url) == before and not (tmp_path / "x.pdf").exists()


def test_user_add_email(duban: Duban, sqlite_url: str) -> None:
    before = counts(sqlite_url)
    bad = duban("user", "add", "kjj", "--role", "unit", "--unit", "区科技局", "--email", "not an address")
    assert bad.code == 2 and "--email" in bad.stderr and counts(sqlite_url) == before
    added = duban.ok("user", "add", "kjj", "--role", "unit", "--unit", "区科技局", "--email", "kjj@example.gov.cn", "--json")
    assert added.json["email"] == "kjj@example.gov.cn"
