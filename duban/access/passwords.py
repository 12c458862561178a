"""Passwords: the rule a new one must meet, and argon2id hashes (argon2-cffi).

The hasher defaults to argon2-cffi's recommended parameters (RFC 9106's low-memory
profile); tests inject a cheap `PasswordHasher` so they stay fast. Checking a password
always costs one argon2 verification, also for a name that is not a user (a dummy hash),
so the time a refusal takes does not tell whether the name exists.
"""

from __future__ import annotations

import secrets
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from duban.errors import UsageError

MIN_LENGTH = 10
MIN_CLASSES = 3
MAX_LENGTH = 1024  # far beyond any passphrase; bounds the work one sign-in can ask for
RULE = "密码至少 10 个字符，且包含小写字母、大写字母、数字、符号四类中的至少 3 类"


def classes(password: str) -> int:
    """How many of lower case, upper case, digits and symbols (anything else) it uses."""
    kinds = set()
    for ch in password:
        kinds.add("lower" if ch.islower() else "upper" if ch.isupper() else "digit" if ch.isdigit() else "symbol")
    return len(kinds)


def check_rule(password: str) -> None:
    """UsageError (exit 2) saying the rule and what this one lacks — never the password itself."""
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        raise UsageError(f"密码不能含控制字符（如换行、制表符）。{RULE}")
    if len(password) < MIN_LENGTH:
        raise UsageError(f"密码太短（{len(password)} 个字符）。{RULE}")
    if len(password) > MAX_LENGTH:
        raise UsageError(f"密码太长（最多 {MAX_LENGTH} 个字符）。{RULE}")
    found = classes(password)
    if found < MIN_CLASSES:
        raise UsageError(f"密码只用了 {found} 类字符。{RULE}")


class Hasher:
    """argon2id hashing and checking, with a dummy hash for names that have none."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()  # argon2id, argon2-cffi's recommended cost
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`; with no stored hash, one dummy check and False."""
        if stored is None:
            if self._dummy is None:
                self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
            self._check(self._dummy, password)
            return False
        return self._check(stored, password)

    def _check(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):  # a mismatch, or a hash this cannot read
            return False

    def needs_rehash(self, stored: str) -> bool:
        """True when `stored` was made with other parameters (re-hashed at the next sign-in)."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
