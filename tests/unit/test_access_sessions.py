"""Board sessions: server-side rows with a new random id at every sign-in, stored only as a
hash; idle 30 min, absolute 12 h, ended by sign-out, by disabling the user and by a new
password; a CSRF token per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from duban.access.service import Refusal, SignedIn, User
from duban.storage.tables import SESSIONS
from tests.unit.access_support import PASSWORD, Office, office

WANG = User("wang", "office", None)


@pytest.fixture
def o(sqlite_url: str) -> Iterator[Office]:
    made = office(sqlite_url)
    yield made
    made.app.db.dispose()


def sign_in(o: Office) -> str:
    done = o.access.sign_in("wang", PASSWORD)
    assert isinstance(done, SignedIn) and done.session is not None and done.user == WANG
    return done.session.id


def test_each_sign_in_gets_a_new_random_id_stored_only_as_a_hash(o: Office) -> None:
    ids = {sign_in(o) for _ in range(3)}
    assert len(ids) == 3 and all(len(i) >= 43 for i in ids)  # 256 bits, URL-safe
    with o.app.db.read() as conn:
        stored = [dict(r._mapping) for r in conn.execute(select(SESSIONS))]
    assert len(stored) == 3
    assert not {str(v) for row in stored for v in row.values()} & ids
    o.assert_no_secret(*ids)
    assert [d.get("session") for a, d in o.security_events() if a == "signed_in"] == [r["id"] for r in stored]


def test_a_refused_sign_in_starts_no_session(o: Office) -> None:
    assert isinstance(o.access.sign_in("wang", "Wrong-Pass-99"), Refusal)
    with o.app.db.read() as conn:
        assert conn.execute(select(SESSIONS)).first() is None


def test_idle_for_more_than_30_minutes_ends_it(o: Office) -> None:
    sid = sign_in(o)
    o.clock.advance(minutes=30)
    assert o.access.session_user(sid) == WANG  # exactly 30 min idle: still live, and touched
    o.clock.advance(minutes=30)
    assert o.access.session_user(sid) == WANG
    o.clock.advance(minutes=30, seconds=1)
    assert o.access.session_user(sid) is None
    o.clock.advance(seconds=1)
    assert o.access.session_user(sid) is None  # ended for good, not just idle
    assert _ended(o) == [("idle",)]


def test_twelve_hours_after_sign_in_it_ends_however_busy(o: Office) -> None:
    sid = sign_in(o)
    for _ in range(47):  # a request every 15 minutes for 11 h 45 min
        o.clock.advance(minutes=15)
        assert o.access.session_user(sid) == WANG
    o.clock.advance(minutes=15)
    assert o.access.session_user(sid) is None
    assert _ended(o) == [("expired",)]


def test_sign_out_ends_it_server_side(o: Office) -> None:
    sid = sign_in(o)
    other = sign_in(o)
    assert o.access.sign_out(sid) is True
    assert o.access.session_user(sid) is None
    assert o.access.sign_out(sid) is False  # a second sign-out: nothing live, no event
    assert o.access.session_user(other) == WANG  # another browser stays signed in
    assert [a for a, _ in o.security_events()].count("signed_out") == 1


def test_disabling_the_user_ends_their_sessions(o: Office) -> None:
    sid = sign_in(o)
    assert o.access.disable("wang")["sessions_ended"] == 1
    assert o.access.session_user(sid) is None
    o.access.enable("wang")
    assert o.access.session_user(sid) is None  # enabling brings no ended session back
    assert isinstance(o.access.sign_in("wang", PASSWORD), SignedIn)


def test_a_disabled_user_cannot_sign_in(o: Office) -> None:
    o.access.disable("wang")
    refused = o.access.sign_in("wang", PASSWORD)
    assert isinstance(refused, Refusal) and refused.reason == "disabled"
    wrong = o.access.sign_in("wang", "Wrong-Pass-99")
    assert isinstance(wrong, Refusal) and wrong.reason == "bad_credentials"  # disabled said only to the password's holder


def test_a_new_password_ends_the_sessions(o: Office) -> None:
    sid = sign_in(o)
    assert o.access.set_password("wang", "Brand-New-Pass-1")["sessions_ended"] == 1
    assert o.access.session_user(sid) is None


def test_a_forged_id_is_no_session(o: Office) -> None:
    sign_in(o)
    assert o.access.session_user("forged") is None
    assert o.access.session_user("") is None


def test_csrf_token_is_per_session(o: Office) -> None:
    first, second = sign_in(o), sign_in(o)
    token = o.access.csrf_token(first)
    assert o.access.csrf_ok(first, token)
    assert not o.access.csrf_ok(second, token)
    assert not o.access.csrf_ok(first, None) and not o.access.csrf_ok(first, "")
    assert not o.access.csrf_ok(first, "令牌" + token)  # any text a form may send: False, never an error
    assert token != first and first not in token


def test_sessions_on_postgresql_too(any_db_url: str) -> None:
    o = office(any_db_url)
    try:
        sid = sign_in(o)
        assert o.access.session_user(sid) == WANG
        assert o.access.sign_out(sid) and o.access.session_user(sid) is None
    finally:
        o.app.db.dispose()


def _ended(o: Office) -> list[tuple[str]]:
    with o.app.db.read() as conn:
        return [(r.end_reason,) for r in conn.execute(select(SESSIONS).where(SESSIONS.c.ended_at.is_not(None)))]
