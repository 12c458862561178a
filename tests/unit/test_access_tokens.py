"""API tokens: printed once, stored only as a hash, expiring, revoked at once, and stopped
while their user is disabled."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from duban.access.service import User
from duban.errors import NotFoundError, RefusedError, UsageError
from duban.storage.tables import API_TOKENS
from tests.conftest import row_counts
from tests.unit.access_support import Office, office

FGJ = User("fgj", "unit", "区发改局")


@pytest.fixture
def o(sqlite_url: str) -> Iterator[Office]:
    made = office(sqlite_url)
    yield made
    made.app.db.dispose()


def test_a_token_acts_as_its_user_and_is_stored_only_as_its_hash(o: Office) -> None:
    made = o.access.create_token("fgj", label="12345 热线")
    token = made["token"]
    assert token.startswith("dbn_") and len(token) > 40
    assert o.access.token_user(token) == FGJ
    with o.app.db.read() as conn:
        row = dict(conn.execute(select(API_TOKENS)).one()._mapping)
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(v) for v in row.values()}
    o.assert_no_secret(token, row["token_hash"])
    assert o.security_events()[-1][0] == "token_created"


def test_the_list_shows_no_secret(o: Office) -> None:
    token = o.access.create_token("fgj")["token"]
    listed = o.access.tokens()
    assert [(t["id"], t["user"], t["status"]) for t in listed] == [(1, "fgj", "active")]
    assert token not in repr(listed) and "hash" not in repr(listed)


def test_a_revoked_token_stops_at_once(o: Office) -> None:
    token = o.access.create_token("fgj")["token"]
    assert o.access.token_user(token) == FGJ
    o.access.revoke_token(1)
    assert o.access.token_user(token) is None
    assert o.access.tokens()[0]["status"] == "revoked"
    assert o.security_events()[-1] == ("token_revoked", {"user": "fgj", "token": 1, "via": "python",
                                                         "os_user": o.security_events()[-1][1]["os_user"]})


def test_revoking_again_or_a_missing_token_changes_nothing(o: Office, sqlite_url: str) -> None:
    o.access.create_token("fgj")
    o.access.revoke_token(1)
    before = row_counts(sqlite_url)
    with pytest.raises(RefusedError):
        o.access.revoke_token(1)
    with pytest.raises(NotFoundError):
        o.access.revoke_token(99)
    assert row_counts(sqlite_url) == before


def test_a_token_expires(o: Office) -> None:
    token = o.access.create_token("fgj", expires="2d")["token"]
    o.clock.advance(days=2, seconds=-1)
    assert o.access.token_user(token) == FGJ
    o.clock.advance(seconds=1)
    assert o.access.token_user(token) is None
    assert o.access.tokens()[0]["status"] == "expired"


def test_default_lifetime_is_90_days_and_never_is_allowed(o: Office) -> None:
    default = o.access.create_token("fgj")
    forever = o.access.create_token("fgj", expires="never")
    wide = o.access.create_token("fgj", expires="９０ｄ")  # typed with a Chinese input method
    assert default["expires_at"] == wide["expires_at"] == "2027-05-30T09:00:00+08:00"
    assert forever["expires_at"] is None
    o.clock.advance(days=3650)
    assert o.access.token_user(forever["token"]) == FGJ


@pytest.mark.parametrize("expires", ["90", "0d", "3651d", "1w", "-1d", "90 d", "٩٠d"])
def test_a_bad_lifetime_is_refused_and_changes_nothing(o: Office, sqlite_url: str, expires: str) -> None:
    before = row_counts(sqlite_url)
    with pytest.raises(UsageError, match="90d"):
        o.access.create_token("fgj", expires=expires)
    assert row_counts(sqlite_url) == before


def test_a_disabled_users_token_stops_and_comes_back_with_the_user(o: Office) -> None:
    token = o.access.create_token("fgj")["token"]
    o.access.disable("fgj")
    assert o.access.token_user(token) is None
    assert o.access.tokens("fgj")[0]["status"] == "user_disabled"
    with pytest.raises(RefusedError):
        o.access.create_token("fgj")
    o.access.enable("fgj")
    assert o.access.token_user(token) == FGJ


def test_a_forged_token_is_nobody(o: Office) -> None:
    o.access.create_token("fgj")
    assert o.access.token_user("dbn_forged") is None
    assert o.access.token_user("") is None
    assert o.access.token_user("Bearer 令牌") is None


def test_last_use_is_recorded(o: Office) -> None:
    token = o.access.create_token("fgj")["token"]
    assert o.access.tokens()[0]["last_used_at"] is None
    o.clock.advance(hours=1)
    o.access.token_user(token)
    assert o.access.tokens()[0]["last_used_at"] == "2027-03-01T10:00:00+08:00"



def test_last_use_is_kept_to_the_minute_so_a_call_is_a_read(o: Office) -> None:
    """Every API call checks its token: writing the row each time would make every read a
    write transaction (one writer at a time on SQLite)."""
    token = o.access.create_token("fgj")["token"]
    o.access.token_user(token)
    first = o.access.tokens()[0]["last_used_at"]
    o.clock.advance(seconds=59)
    with o.app.db.read() as conn:
        before = conn.execute(select(API_TOKENS.c.last_used_at)).scalar_one()
    assert o.access.token_user(token) == FGJ
    assert o.access.tokens()[0]["last_used_at"] == first
    with o.app.db.read() as conn:
        assert conn.execute(select(API_TOKENS.c.last_used_at)).scalar_one() == before
    o.clock.advance(seconds=1)
    o.access.token_user(token)
    assert o.access.tokens()[0]["last_used_at"] != first


def test_tokens_on_postgresql_too(any_db_url: str) -> None:
    o = office(any_db_url)
    try:
        token = o.access.create_token("fgj", label="对接")["token"]
        assert o.access.token_user(token) == FGJ
        o.access.revoke_token(1)
        assert o.access.token_user(token) is None
    finally:
        o.app.db.dispose()
