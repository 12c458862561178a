"""Sign-in and access on the command line, end to end (SPEC §12): `user passwd / disable /
enable / totp`, `token create / list / revoke`, `user add --mobile`; every security event
in the audit chain `audit verify` checks, with `via: cli` and the OS user, and no secret in
any event, output of another command, or log line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from duban.access.passwords import Hasher
from duban.access.service import Access, Refusal, SignedIn, User
from duban.cli import cli
from duban.clock import ManualClock, parse_instant
from duban.service.app import App
from duban.service.directory import os_user
from duban.storage.database import Database
from duban.storage.tables import API_TOKENS, AUDIT, CREDENTIALS, USERS
from tests.conftest import Duban, Run, row_counts
from tests.unit.access_support import CHEAP, TZ

NOW = "2027-03-01T09:00"
PASSWORD = "Correct-Horse-42"
DEBUG = {"DUBAN_LOG_LEVEL": "DEBUG"}


def piped(duban: Duban, *args: str, stdin: str, now: str = NOW) -> Run:
    """A command with `stdin` piped in (not a terminal), logging everything to stderr."""
    result = duban.runner.invoke(cli, ["--db", duban.db_url, "--now", now, *args], input=stdin,
                                 env={"DUBAN_NOW": "", "DUBAN_ACTOR": "", **DEBUG}, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def access(duban: Duban, now: str = NOW) -> Access:
    """The service the board will call, on the CLI's database. Checking a hash uses the
    parameters stored in it; the cheap hasher only makes the dummy check of an unknown name
    cheap (and would re-hash a default-cost hash at sign-in, which these tests ignore)."""
    app = App(Database(duban.db_url), ManualClock(parse_instant(now, TZ)), TZ)
    return Access(app, hasher=Hasher(CHEAP))


def events(url: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(AUDIT).order_by(AUDIT.c.seq))]
    finally:
        engine.dispose()


def rows(url: str, table: Any) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table))]
    finally:
        engine.dispose()


class TestPasswd:
    def test_piped_once_then_signs_in(self, duban: Duban) -> None:
        run = piped(duban, "user", "passwd", "wang", stdin=PASSWORD + "\n")
        assert run.code == 0, run.stderr
        assert "已为用户 wang 设置密码" in run.stdout and PASSWORD not in run.stdout + run.stderr
        a = access(duban)
        try:
            assert a.authenticate("wang", PASSWORD) == User("wang", "office", None)
            assert isinstance(a.authenticate("wang", PASSWORD + "\n"), Refusal)  # the line end is not the password's
        finally:
            a.app.db.dispose()
        stored = rows(duban.db_url, CREDENTIALS)[0]["password_hash"]
        assert stored.startswith("$argon2id$")

    def test_spaces_are_part_of_the_password(self, duban: Duban) -> None:
        assert piped(duban, "user", "passwd", "wang", stdin=" correct horse 42 \r\n").code == 0
        a = access(duban)
        try:
            assert isinstance(a.authenticate("wang", " correct horse 42 "), User)
        finally:
            a.app.db.dispose()

    @pytest.mark.parametrize("bad", ["short-1A", "alllowercaseletters", "ALLUPPER123456"])
    def test_a_password_breaking_the_rule_exits_2_and_changes_nothing(self, duban: Duban, bad: str) -> None:
        before = row_counts(duban.db_url)
        run = piped(duban, "user", "passwd", "wang", stdin=bad + "\n")
        assert run.code == 2
        assert "至少 10 个字符" in run.stderr and "至少 3 类" in run.stderr
        assert bad not in run.stderr + run.stdout
        assert row_counts(duban.db_url) == before

    def test_on_a_terminal_asked_twice_without_echo(self, duban: Duban, monkeypatch: pytest.MonkeyPatch) -> None:
        """getpass reads without echo; the two answers must match, else exit 2 and nothing changed."""
        import getpass

        from duban.commands import access as cli_access

        answers: list[str] = []
        prompts: list[str] = []

        def no_echo(prompt: str = "") -> str:
            prompts.append(prompt)
            return answers.pop(0)

        monkeypatch.setattr(cli_access, "on_terminal", lambda: True)
        monkeypatch.setattr(getpass, "getpass", no_echo)
        answers[:] = [PASSWORD, PASSWORD + "x"]
        before = row_counts(duban.db_url)
        mismatch = piped(duban, "user", "passwd", "wang", stdin="")
        assert mismatch.code == 2 and "两次输入的密码不一致" in mismatch.stderr
        assert row_counts(duban.db_url) == before
        answers[:] = [PASSWORD, PASSWORD]
        run = piped(duban, "user", "passwd", "wang", stdin="")
        assert run.code == 0 and PASSWORD not in run.stdout + run.stderr
        assert prompts == ["新密码（输入时不显示）：", "再输入一次新密码："] * 2

    def test_nothing_on_stdin_exits_2(self, duban: Duban) -> None:
        before = row_counts(duban.db_url)
        run = piped(duban, "user", "passwd", "wang", stdin="")
        assert run.code == 2 and "标准输入中没有密码" in run.stderr
        assert row_counts(duban.db_url) == before

    def test_no_such_user_exits_3(self, duban: Duban) -> None:
        before = row_counts(duban.db_url)
        run = piped(duban, "user", "passwd", "nobody", stdin=PASSWORD + "\n")
        assert run.code == 3 and "nobody" in run.stderr and PASSWORD not in run.stderr
        assert row_counts(duban.db_url) == before


class TestDisable:
    def test_a_disabled_actor_is_refused_with_exit_4_and_nothing_changes(self, duban: Duban) -> None:
        case_id = duban.ok("case", "open", "supervision", "--title", "台账", "--unit", "区发改局", "--due", "15wd",
                           "--json", now=NOW, actor="wang").json["id"]
        duban.ok("user", "disable", "fgj", now=NOW)
        before = row_counts(duban.db_url)
        run = duban("case", "fire", str(case_id), "accept", now="2027-03-01T10:00", actor="fgj")
        assert run.code == 4 and "已停用" in run.stderr
        assert row_counts(duban.db_url) == before
        duban.ok("user", "enable", "fgj", now=NOW)
        duban.ok("case", "fire", str(case_id), "accept", now="2027-03-01T10:00", actor="fgj")

    def test_disable_ends_sessions_and_stops_tokens(self, duban: Duban) -> None:
        piped(duban, "user", "passwd", "fgj", stdin=PASSWORD + "\n")
        token = duban.ok("token", "create", "fgj", "--json", now=NOW).json["token"]
        a = access(duban)
        try:
            signed = a.sign_in("fgj", PASSWORD)
            assert isinstance(signed, SignedIn) and signed.session is not None
            shown = duban.ok("user", "disable", "fgj", "--json", now=NOW).json
            assert shown == {"user": "fgj", "disabled": True, "sessions_ended": 1}
            assert a.session_user(signed.session.id) is None
            assert a.token_user(token) is None
            assert a.sign_in("fgj", PASSWORD).reason == "disabled"  # type: ignore[union-attr]
        finally:
            a.app.db.dispose()
        listed = duban.ok("token", "list", "--json", now=NOW).json
        assert [t["status"] for t in listed] == ["user_disabled"]

    def test_disabling_twice_or_enabling_an_enabled_user_exits_4(self, duban: Duban) -> None:
        duban.ok("user", "disable", "fgj", now=NOW)
        before = row_counts(duban.db_url)
        assert duban("user", "disable", "fgj", now=NOW).code == 4
        assert duban("user", "enable", "czj", now=NOW).code == 4
        assert duban("user", "disable", "nobody", now=NOW).code == 3
        assert row_counts(duban.db_url) == before


class TestTokens:
    def test_create_prints_it_once_and_list_never_shows_it(self, duban: Duban) -> None:
        created = duban("token", "create", "fgj", "--label", "12345 热线", "--expires", "30d", now=NOW, env=DEBUG)
        assert created.code == 0
        token = next(line for line in created.stdout.splitlines() if line.startswith("dbn_"))
        assert "只显示这一次" in created.stdout and token not in created.stderr
        listed = duban.ok("token", "list", now=NOW, env=DEBUG)
        assert "12345 热线" in listed.stdout and "有效" in listed.stdout and "2027-03-31 09:00" in listed.stdout
        as_json = duban.ok("token", "list", "fgj", "--json", now=NOW).json
        assert [(t["id"], t["user"], t["label"], t["status"]) for t in as_json] == [(1, "fgj", "12345 热线", "active")]
        stored = rows(duban.db_url, API_TOKENS)[0]["token_hash"]
        for text in (listed.stdout, listed.stderr, json.dumps(as_json, ensure_ascii=False)):
            assert token not in text and stored not in text

    def test_revoke_stops_it_at_once(self, duban: Duban) -> None:
        token = duban.ok("token", "create", "fgj", "--json", now=NOW).json["token"]
        a = access(duban)
        try:
            assert a.token_user(token) == User("fgj", "unit", "区发改局")
            assert "已撤销令牌 #1" in duban.ok("token", "revoke", "1", now=NOW).stdout
            assert a.token_user(token) is None
        finally:
            a.app.db.dispose()
        assert duban.ok("token", "list", "--json", now=NOW).json[0]["status"] == "revoked"

    @pytest.mark.parametrize(("args", "code"), [
        (("token", "create", "fgj", "--expires", "1y"), 2),
        (("token", "create", "nobody"), 3),
        (("token", "revoke", "7"), 3),
        (("token", "revoke", "one"), 2),
        (("token", "list", "nobody"), 3),
    ])
    def test_bad_input_changes_nothing(self, duban: Duban, args: tuple[str, ...], code: int) -> None:
        duban.ok("token", "create", "fgj", now=NOW)
        before = row_counts(duban.db_url)
        run = duban(*args, now=NOW)
        assert run.code == code and run.stderr.strip() and "Traceback" not in run.stderr
        assert row_counts(duban.db_url) == before


class TestDirectory:
    def test_mobile_is_kept_as_its_digits(self, duban: Duban) -> None:
        added = duban.ok("user", "add", "zhou", "--role", "office", "--mobile", "+86 138-0013-8000", "--json").json
        assert added["mobile"] == "13800138000"
        assert {r["name"]: r["mobile"] for r in rows(duban.db_url, USERS)}["zhou"] == "13800138000"

    def test_a_bad_mobile_exits_2_and_adds_nobody(self, duban: Duban) -> None:
        before = row_counts(duban.db_url)
        run = duban("user", "add", "zhou", "--role", "office", "--mobile", "12345")
        assert run.code == 2 and "手机号" in run.stderr
        assert row_counts(duban.db_url) == before

    def test_totp_prints_the_provisioning_uri(self, duban: Duban) -> None:
        run = duban.ok("user", "totp", "wang", now=NOW, env=DEBUG)
        uri = next(line for line in run.stdout.splitlines() if line.startswith("otpauth://totp/duban:wang?"))
        assert "secret=" in uri and uri not in run.stderr
        secret = rows(duban.db_url, CREDENTIALS)[0]["totp_secret"]
        assert secret in uri and secret not in run.stderr


def test_every_security_event_is_in_the_verified_chain_and_no_secret_anywhere(duban: Duban) -> None:
    """The whole story: a password, a token, TOTP, sign-in and its failures up to a lock,
    sign-out, disable and enable — each an event with an empty case, `audit verify` ok, and
    no password, token, hash, TOTP secret or session id in any event or log line."""
    logs = [piped(duban, "user", "passwd", "wang", stdin=PASSWORD + "\n").stderr,
            piped(duban, "user", "passwd", "fgj", stdin=PASSWORD + "\n").stderr]
    token_run = duban.ok("token", "create", "fgj", "--label", "对接", "--json", now=NOW, env=DEBUG)
    token = token_run.json["token"]
    logs.append(token_run.stderr)
    totp_run = duban.ok("user", "totp", "li", "--json", now=NOW, env=DEBUG)
    logs.append(totp_run.stderr)
    a = access(duban)
    try:
        signed = a.sign_in("wang", PASSWORD)
        assert isinstance(signed, SignedIn) and signed.session is not None
        a.session_user(signed.session.id)
        a.sign_out(signed.session.id)
        for _ in range(5):
            a.sign_in("fgj", "Wrong-Pass-99")
        assert a.token_user(token) is not None
    finally:
        a.app.db.dispose()
    logs.append(duban.ok("token", "revoke", "1", now=NOW, env=DEBUG).stderr)
    logs.append(duban.ok("user", "disable", "fgj", now=NOW, env=DEBUG).stderr)
    logs.append(duban.ok("user", "enable", "fgj", now=NOW, env=DEBUG).stderr)
    verified = duban.ok("audit", "verify", "--json")
    assert verified.json["ok"] is True

    chain = events(duban.db_url)
    security = [e for e in chain if e["action"] not in ("user_added", "unit_added")]
    assert all(e["case_id"] is None for e in security)
    assert [e["action"] for e in security] == [
        "password_set", "password_set", "token_created", "totp_set", "signed_in", "signed_out",
        *["sign_in_failed"] * 5, "user_locked", "token_revoked", "user_disabled", "user_enabled"]
    by_cli = [e for e in security if e["role"] == "operator"]
    assert len(by_cli) == 7 and all(e["data"]["via"] == "cli" and e["data"]["os_user"] == os_user() for e in by_cli)
    assert {e["data"]["via"] for e in security if e["role"] != "operator"} == {"board"}

    credentials = rows(duban.db_url, CREDENTIALS)
    secrets = [PASSWORD, "Wrong-Pass-99", token, signed.session.id, signed.session.csrf,
               totp_run.json["uri"], *(c["password_hash"] for c in credentials if c["password_hash"]),
               *(c["totp_secret"] for c in credentials if c["totp_secret"]),
               *(t["token_hash"] for t in rows(duban.db_url, API_TOKENS))]
    text = json.dumps(chain, default=str, ensure_ascii=False) + "\n".join(logs) + verified.stdout
    assert "user.password_set" in text  # the logs were captured at DEBUG
    for secret in secrets:
        assert secret not in text


def test_cli_case_events_record_via_cli_and_the_os_user(duban: Duban) -> None:
    """Every event a command writes — the directory's, a case's, the scheduler's tick — says it
    came from the CLI and who ran it; events written through Python carry no such fields."""
    case_id = duban.ok("case", "open", "supervision", "--title", "台账", "--unit", "区发改局", "--due", "5wd",
                       "--json", now=NOW, actor="wang").json["id"]
    duban.ok("case", "fire", str(case_id), "accept", now="2027-03-01T10:00", actor="fgj")
    duban.ok("tick", now="2027-03-20T10:00")
    chain = events(duban.db_url)
    assert {e["action"] for e in chain} >= {"user_added", "open", "fire", "escalate"}
    for e in chain:
        assert (e["data"]["via"], e["data"]["os_user"]) == ("cli", os_user()), e
    opened = next(e for e in chain if e["action"] == "open")
    assert opened["data"]["title"] == "台账"  # the event's own data is untouched beside them
    a = access(duban)
    try:
        a.app.fire(case_id, "report", actor="fgj", note="已完成")
    finally:
        a.app.db.dispose()
    assert "via" not in events(duban.db_url)[-1]["data"]
    assert duban.ok("audit", "verify", "--json").json["ok"] is True
