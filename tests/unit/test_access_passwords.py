"""Passwords: the rule (≥ 10 characters from ≥ 3 of four kinds), argon2id hashes, and a
refusal that says the rule, changes nothing and never shows the password."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from duban.access.passwords import Hasher, check_rule, classes
from duban.access.service import Refusal, User
from duban.errors import NotFoundError, UsageError
from duban.storage.tables import CREDENTIALS
from tests.conftest import row_counts
from tests.unit.access_support import CHEAP, PASSWORD, Office, office


@pytest.fixture
def o(sqlite_url: str) -> Iterator[Office]:
    made = office(sqlite_url)
    yield made
    made.app.db.dispose()


@pytest.mark.parametrize(("password", "kinds"), [
    ("abcdefghij", 1), ("abcdeFGHIJ", 2), ("abcdeFGH12", 3), ("abcde-1234", 3), ("Ab1-Ab1-Ab", 4),
    ("督办工作Abc12", 4), ("ÉCOLEécole1", 3),
])
def test_classes_counted(password: str, kinds: int) -> None:
    assert classes(password) == kinds


@pytest.mark.parametrize("password", ["Abcdefgh12", "correct horse 42", "督办-督办-督办-1a"])
def test_passwords_that_meet_the_rule(password: str) -> None:
    check_rule(password)


@pytest.mark.parametrize(("password", "says"), [
    ("Ab1-xyz", "太短"), ("abcdefghijkl", "只用了 1 类"), ("abcdefghij12", "只用了 2 类"),
    ("Abcdefgh12\n", "控制字符"), ("A1-" + "b" * 1100, "太长"),
])
def test_a_password_breaking_the_rule_is_refused_saying_the_rule(password: str, says: str) -> None:
    with pytest.raises(UsageError) as refused:
        check_rule(password)
    message = str(refused.value)
    assert says in message and "至少 10 个字符" in message and "至少 3 类" in message
    assert password.strip() not in message


def test_set_password_breaking_the_rule_changes_nothing(o: Office, sqlite_url: str) -> None:
    before = row_counts(sqlite_url)
    with pytest.raises(UsageError):
        o.access.set_password("li", "short1A")
    assert row_counts(sqlite_url) == before
    assert isinstance(o.access.authenticate("li", "short1A"), Refusal)


def test_set_password_for_no_such_user_is_not_found(o: Office, sqlite_url: str) -> None:
    before = row_counts(sqlite_url)
    with pytest.raises(NotFoundError):
        o.access.set_password("nobody", PASSWORD)
    assert row_counts(sqlite_url) == before


def test_stored_only_as_an_argon2id_hash(o: Office) -> None:
    with o.app.db.read() as conn:
        stored = conn.execute(select(CREDENTIALS.c.password_hash).where(CREDENTIALS.c.user_name == "wang")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    o.assert_no_secret(PASSWORD, stored)


def test_the_password_signs_in_and_a_new_one_replaces_it(o: Office) -> None:
    assert o.access.authenticate("wang", PASSWORD) == User("wang", "office", None)
    o.access.set_password("wang", "Another-Pass-7")
    assert isinstance(o.access.authenticate("wang", PASSWORD), Refusal)
    assert o.access.authenticate("wang", "Another-Pass-7") == User("wang", "office", None)
    assert [a for a, _ in o.security_events()] == ["password_set", "signed_in", "password_set",
                                                   "sign_in_failed", "signed_in"]


def test_a_user_without_a_password_cannot_sign_in(o: Office) -> None:
    refused = o.access.authenticate("li", "")
    assert isinstance(refused, Refusal) and refused.reason == "bad_credentials"
    assert o.security_events()[-1] == ("sign_in_failed", {"user": "li", "reason": "no_password", "via": "python"})


def test_an_unknown_name_gets_the_same_answer_and_is_not_recorded(o: Office) -> None:
    unknown = o.access.authenticate("Secret-Typed-In-Name-9", PASSWORD)
    wrong = o.access.authenticate("wang", "Wrong-Pass-99")
    assert isinstance(unknown, Refusal) and isinstance(wrong, Refusal)
    assert (unknown.reason, unknown.message) == (wrong.reason, wrong.message)
    o.assert_no_secret("Secret-Typed-In-Name-9", "Wrong-Pass-99")


def test_an_unknown_name_still_costs_one_argon2_check() -> None:
    """Constant work whether the name exists: a dummy hash is verified."""
    calls: list[str] = []

    class Counting(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            calls.append("verify")
            return super().verify(hash, password)

    hasher = Hasher(Counting(time_cost=1, memory_cost=8, parallelism=1))
    assert hasher.verify(None, PASSWORD) is False
    assert hasher.verify(hasher.hash(PASSWORD), PASSWORD) is True
    assert calls == ["verify", "verify"]


def test_a_hash_made_with_old_parameters_is_renewed_at_sign_in(o: Office) -> None:
    stronger = Hasher(PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    o.access.hasher = stronger
    assert isinstance(o.access.authenticate("wang", PASSWORD), User)
    with o.app.db.read() as conn:
        stored = conn.execute(select(CREDENTIALS.c.password_hash).where(CREDENTIALS.c.user_name == "wang")).scalar_one()
    assert not stronger.needs_rehash(stored) and CHEAP.check_needs_rehash(stored)
    assert isinstance(o.access.authenticate("wang", PASSWORD), User)


def test_default_parameters_are_argon2_cffis_recommended() -> None:
    default = Hasher().hasher
    recommended = PasswordHasher()
    assert (default.time_cost, default.memory_cost, default.parallelism, default.type) == (
        recommended.time_cost, recommended.memory_cost, recommended.parallelism, recommended.type)
