"""5 failed sign-ins for one user within 15 minutes lock that user for 15 minutes; during
the lock the right password fails too (SPEC §12). Time moves only on the pinned clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from duban.access.service import Refusal, User
from tests.unit.access_support import PASSWORD, START, Office, office

WRONG = "Wrong-Pass-99"


@pytest.fixture
def o(sqlite_url: str) -> Iterator[Office]:
    made = office(sqlite_url)
    yield made
    made.app.db.dispose()


def fail_times(o: Office, n: int, every_minutes: float = 1) -> Refusal:
    refusals = []
    for _ in range(n):
        found = o.access.authenticate("wang", WRONG)
        assert isinstance(found, Refusal)
        refusals.append(found)
        o.clock.advance(minutes=every_minutes)
    return refusals[-1]


def test_five_failures_lock_and_the_right_password_then_fails(o: Office) -> None:
    assert fail_times(o, 4).reason == "bad_credentials"
    fifth = o.access.authenticate("wang", WRONG)
    assert isinstance(fifth, Refusal) and fifth.reason == "locked"
    assert fifth.until == START + timedelta(minutes=4 + 15)  # the fifth failure came at 09:04
    assert "锁定至" in fifth.message and "09:19" in fifth.message  # 09:04 + 15 min, office time
    o.clock.advance(minutes=14, seconds=59)
    during = o.access.authenticate("wang", PASSWORD)
    assert isinstance(during, Refusal) and during.reason == "locked"
    o.clock.advance(seconds=1)
    assert o.access.authenticate("wang", PASSWORD) == User("wang", "office", None)
    actions = [(a, d.get("reason")) for a, d in o.security_events()[1:]]
    assert actions == [*[("sign_in_failed", "wrong_password")] * 5, ("user_locked", None),
                       ("sign_in_failed", "locked"), ("signed_in", None)]


def test_the_lock_event_says_who_and_until_when(o: Office) -> None:
    fail_times(o, 5)
    locked = [d for a, d in o.security_events() if a == "user_locked"]
    assert locked == [{"user": "wang", "until": "2027-03-01T01:19:00+00:00", "failures": 5, "via": "python"}]


def test_failures_spread_over_more_than_the_window_do_not_lock(o: Office) -> None:
    fail_times(o, 8, every_minutes=4)  # never 5 within any 15 minutes
    assert o.access.authenticate("wang", PASSWORD) == User("wang", "office", None)


def test_a_sign_in_resets_the_count(o: Office) -> None:
    fail_times(o, 4)
    assert isinstance(o.access.authenticate("wang", PASSWORD), User)
    assert fail_times(o, 4).reason == "bad_credentials"
    assert isinstance(o.access.authenticate("wang", PASSWORD), User)


def test_tries_during_the_lock_do_not_extend_it(o: Office) -> None:
    fail_times(o, 5, every_minutes=0)
    for _ in range(10):
        o.clock.advance(minutes=1)
        assert o.access.authenticate("wang", WRONG).reason == "locked"  # type: ignore[union-attr]
    o.clock.advance(minutes=5)
    assert isinstance(o.access.authenticate("wang", PASSWORD), User)


def test_one_users_lock_leaves_the_others_alone(o: Office) -> None:
    o.access.set_password("li", PASSWORD)
    fail_times(o, 5, every_minutes=0)
    assert o.access.authenticate("li", PASSWORD) == User("li", "leader", None)


def test_a_new_password_from_the_operator_unlocks(o: Office) -> None:
    fail_times(o, 5, every_minutes=0)
    o.access.set_password("wang", "Brand-New-Pass-1")
    assert isinstance(o.access.authenticate("wang", "Brand-New-Pass-1"), User)


def test_locks_on_postgresql_too(any_db_url: str) -> None:
    o = office(any_db_url)
    try:
        fail_times(o, 5, every_minutes=0)
        assert o.access.authenticate("wang", PASSWORD).reason == "locked"  # type: ignore[union-attr]
        o.clock.advance(minutes=15)
        assert isinstance(o.access.authenticate("wang", PASSWORD), User)
    finally:
        o.app.db.dispose()
