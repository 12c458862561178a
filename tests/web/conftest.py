"""Fixtures of the board and API tests: an office with users who have passwords, one case,
a pinned clock the tests move, and clients signed in as one of them.

Passwords are hashed with a cheap argon2 setting so sign-in takes microseconds here; the
service's default is argon2-cffi's recommended cost.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from duban.access.passwords import Hasher
from duban.access.service import Access
from duban.access.settings import Security
from duban.clock import ManualClock
from duban.service.app import App
from duban.storage.database import Database
from duban.web.factory import create_app

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2027, 3, 1, 9, 0, tzinfo=TZ)  # a Monday
PASSWORD = "Duban-2027-test"
USERS = [("wang", "office", None), ("li", "leader", None), ("zhao", "inspector", None),
         ("fgj", "unit", "区发改局"), ("czj", "unit", "区财政局"), ("scj", "unit", "区市场监管局")]
BASE = "https://testserver"  # https: the session cookie is Secure


def cheap_hasher() -> Hasher:
    return Hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@dataclass
class Office:
    url: str
    app: App
    access: Access
    clock: ManualClock
    web: Any
    case_id: int = 0
    tokens: dict[str, str] = field(default_factory=dict)  # made at setup: row counts taken later stay put
    clients: list[TestClient] = field(default_factory=list)

    def client(self) -> TestClient:
        c = TestClient(self.web, base_url=BASE, follow_redirects=False)
        self.clients.append(c)
        return c

    def signed_in(self, name: str, password: str = PASSWORD) -> TestClient:
        c = self.client()
        r = sign_in(c, name, password)
        assert r.status_code == 303, r.text
        return c

    def token(self, name: str) -> dict[str, str]:
        """The Authorization header of the user's API token."""
        return {"Authorization": f"Bearer {self.tokens[name]}"}


def hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no hidden field {name}"
    return m.group(1)


def sign_in(c: TestClient, name: str, password: str, totp: str = "") -> Any:
    form = c.get("/login")
    return c.post("/login", data={"username": name, "password": password, "totp": totp,
                                  "csrf_token": hidden(form.text, "csrf_token"), "next": "/"})


def csrf_of(c: TestClient, path: str = "/") -> str:
    return hidden(c.get(path).text, "csrf_token")


def make_office(url: str, security: Security | None = None) -> Office:
    clock = ManualClock(START)
    app = App(Database(url), clock, TZ)
    app.init()
    access = Access(app, hasher=cheap_hasher(), security=security or Security())
    for name, role, unit in USERS:
        app.add_user(name, role, unit)
        access.set_password(name, PASSWORD)
    case = app.open_case("supervision", title="报送一季度重点工作进展", lead_unit="区发改局", co_units=["区财政局"],
                         due="10wd", values={}, actor="wang")
    tokens = {name: access.create_token(name)["token"] for name, _, _ in USERS}
    return Office(url, app, access, clock, create_app(app, access), case["id"], tokens)


@pytest.fixture
def office(sqlite_url: str) -> Iterator[Office]:
    o = make_office(sqlite_url)
    yield o
    for c in o.clients:
        c.close()
    o.app.db.dispose()


@pytest.fixture
def pg_office(pg_url: str) -> Iterator[Office]:
    o = make_office(pg_url)
    yield o
    for c in o.clients:
        c.close()
    o.app.db.dispose()
