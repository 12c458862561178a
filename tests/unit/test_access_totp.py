"""The optional second factor (TOTP, RFC 6238) on a pinned clock: the right code signs in,
a wrong or reused one fails and counts toward the lock, and `require_totp` makes it
required for the roles named."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from duban.access import totp
from duban.access.service import Refusal, SignedIn, User
from duban.access.settings import Security, load
from duban.errors import UsageError
from duban.logconfig import configure
from tests.unit.access_support import PASSWORD, Office, office

WANG = User("wang", "office", None)


@pytest.fixture
def o(sqlite_url: str) -> Iterator[Office]:
    made = office(sqlite_url)
    yield made
    made.app.db.dispose()


def provision(o: Office) -> str:
    uri = o.access.provision_totp("wang")["uri"]
    parsed = urlparse(uri)
    assert (parsed.scheme, parsed.netloc, parsed.path) == ("otpauth", "totp", "/duban:wang")
    return str(parse_qs(parsed.query)["secret"][0])


def test_the_right_code_signs_in(o: Office) -> None:
    secret = provision(o)
    assert o.access.authenticate("wang", PASSWORD, totp.code_at(secret, o.clock.now())) == WANG
    o.assert_no_secret(secret)


def test_no_code_asks_for_one_without_counting_a_failure(o: Office) -> None:
    provision(o)
    for _ in range(6):
        asked = o.access.authenticate("wang", PASSWORD)
        assert isinstance(asked, Refusal) and asked.reason == "totp_required"
    assert "signed_in" not in [a for a, _ in o.security_events()]


def test_a_wrong_code_fails_and_counts_toward_the_lock(o: Office) -> None:
    secret = provision(o)
    right = totp.code_at(secret, o.clock.now())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    results = [o.access.authenticate("wang", PASSWORD, wrong) for _ in range(5)]
    assert [r.reason for r in results if isinstance(r, Refusal)] == ["totp_invalid"] * 4 + ["locked"]
    assert o.access.authenticate("wang", PASSWORD, right).reason == "locked"  # type: ignore[union-attr]


def test_a_code_works_once(o: Office) -> None:
    secret = provision(o)
    code = totp.code_at(secret, o.clock.now())
    assert o.access.authenticate("wang", PASSWORD, code) == WANG
    again = o.access.authenticate("wang", PASSWORD, code)
    assert isinstance(again, Refusal) and again.reason == "totp_invalid"
    o.clock.advance(seconds=30)
    assert o.access.authenticate("wang", PASSWORD, totp.code_at(secret, o.clock.now())) == WANG


@pytest.mark.parametrize(("offset", "accepted"), [(-60, False), (-30, True), (30, True), (60, False)])
def test_one_step_of_clock_drift_either_way(o: Office, offset: int, accepted: bool) -> None:
    secret = provision(o)
    code = totp.code_at(secret, o.clock.now() + timedelta(seconds=offset))
    assert (o.access.authenticate("wang", PASSWORD, code) == WANG) is accepted


@pytest.mark.parametrize("code", ["", "abcdef", "１２３４５６", "12345678901234567890"])
def test_odd_codes_fail_cleanly(o: Office, code: str) -> None:
    provision(o)
    assert isinstance(o.access.authenticate("wang", PASSWORD, code), Refusal)


def test_a_new_secret_replaces_the_old_one(o: Office) -> None:
    old = provision(o)
    new = provision(o)
    assert old != new
    now = o.clock.now()
    assert isinstance(o.access.authenticate("wang", PASSWORD, totp.code_at(old, now)), Refusal)
    assert o.access.authenticate("wang", PASSWORD, totp.code_at(new, now)) == WANG


def test_required_roles_cannot_sign_in_without_it(sqlite_url: str) -> None:
    o = office(sqlite_url, Security(frozenset({"office", "leader"})))
    try:
        o.access.set_password("fgj", PASSWORD)
        assert o.access.authenticate("fgj", PASSWORD) == User("fgj", "unit", "区发改局")  # unit: not required
        refused = o.access.authenticate("wang", PASSWORD)
        assert isinstance(refused, Refusal) and refused.reason == "totp_not_set_up"
        assert "duban user totp wang" in refused.message
        secret = provision(o)
        assert o.access.authenticate("wang", PASSWORD, totp.code_at(secret, o.clock.now())) == WANG
    finally:
        o.app.db.dispose()


class TestSettings:
    def test_require_totp_read_from_the_settings_file(self, tmp_path: Path) -> None:
        file = tmp_path / "settings.yaml"
        file.write_text("notify: {}\nsecurity:\n  require_totp: [office, leader]\n", encoding="utf-8")
        assert load(str(file)) == Security(frozenset({"office", "leader"}))

    def test_no_file_or_no_section_requires_nothing(self, tmp_path: Path) -> None:
        file = tmp_path / "settings.yaml"
        file.write_text("notify: {}\n", encoding="utf-8")
        assert load(str(file)) == Security() == load("")

    @pytest.mark.parametrize(("body", "says"), [
        ("security: {require_totp: [boss]}", "security.require_totp"),
        ("security: {require_totp: office, remember: 1}", "security.remember"),
        ("security: [office]", "security"),
    ])
    def test_a_bad_section_names_the_key(self, tmp_path: Path, body: str, says: str) -> None:
        file = tmp_path / "settings.yaml"
        file.write_text(body, encoding="utf-8")
        with pytest.raises(UsageError, match=re.escape(f"{file}: {says}")):
            load(str(file))


def test_no_secret_in_any_log_line(o: Office, capsys: pytest.CaptureFixture[str]) -> None:
    """Every step of signing in logged at DEBUG: neither the password, the session id, the
    TOTP secret or code, nor a token appears in a line."""
    configure("DEBUG")
    try:
        secret = provision(o)
        code = totp.code_at(secret, o.clock.now())
        o.access.authenticate("wang", "Wrong-Pass-99")
        o.access.authenticate("Typed-Password-As-Name-1", PASSWORD)
        signed = o.access.sign_in("wang", PASSWORD, code)
        assert isinstance(signed, SignedIn) and signed.session is not None
        o.access.session_user(signed.session.id)
        o.access.sign_out(signed.session.id)
        token = o.access.create_token("wang")["token"]
        o.access.token_user(token)
        err = capsys.readouterr().err
    finally:
        configure()
    assert "user.signed_in" in err and "user.sign_in_refused" in err
    for leaked in (PASSWORD, "Wrong-Pass-99", "Typed-Password-As-Name-1", signed.session.id, secret, code, token,
                   signed.session.csrf):
        assert leaked not in err
