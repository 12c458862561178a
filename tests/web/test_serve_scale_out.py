"""Scale-out (SPEC §13): two `duban serve` processes on one PostgreSQL database share
nothing but the database, so a session made on one works on the other, and `--workers N`
starts N processes behind one port."""

from __future__ import annotations

import re

import httpx
import pytest

from duban.clock import ManualClock
from duban.service.app import App
from duban.storage.database import Database
from tests.web.conftest import PASSWORD, START, TZ, make_office
from tests.web.test_serve import serving


def _sign_in(base: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=base, follow_redirects=False, timeout=10)
    form = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]*)"', form.text)
    assert token, form.text
    r = c.post("/login", data={"username": name, "password": PASSWORD, "totp": "", "csrf_token": token.group(1),
                               "next": "/"})
    assert r.status_code == 303, r.text
    return c


@pytest.mark.postgres
def test_a_session_made_on_one_server_works_on_the_other(pg_url: str) -> None:
    office = make_office(pg_url)
    case_id = office.case_id
    office.app.db.dispose()
    with serving(pg_url, "--insecure-cookies") as one, serving(pg_url, "--insecure-cookies") as two:
        assert one != two
        signed = _sign_in(one, "fgj")
        sid = signed.cookies["duban_session"]
        with httpx.Client(base_url=two, cookies={"duban_session": sid}, follow_redirects=False, timeout=10) as other:
            assert other.get("/api/v1/me").json()["name"] == "fgj"
            page = other.get("/")
            assert page.status_code == 200 and "报送一季度重点工作进展" in page.text
            csrf = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
            assert csrf
            fired = other.post(f"/api/v1/cases/{case_id}/fire", json={"trigger": "accept", "note": "已签收"},
                               headers={"X-CSRF-Token": csrf.group(1)})
            assert fired.status_code == 200, fired.text
        # the first server reads what the second wrote: the case moved, by the signed-in user
        shown = signed.get(f"/api/v1/cases/{case_id}").json()
        assert shown["state"] == fired.json()["state"] != "assigned"
        # signing out on one ends the session on both (it is one row in the database)
        assert signed.post("/logout", data={"csrf_token": csrf.group(1)}).status_code == 303
        with httpx.Client(base_url=two, cookies={"duban_session": sid}, timeout=10) as other:
            assert other.get("/api/v1/me").status_code == 401
        signed.close()
    app = App(Database(pg_url), ManualClock(START), TZ)
    try:
        accepted = [e for e in app.history(case_id) if e["trigger"] == "accept"]
        assert [(e["actor"], e["data"].get("via")) for e in accepted] == [("fgj", "web")]
    finally:
        app.db.dispose()


@pytest.mark.postgres
def test_workers_start_several_processes_on_one_port(pg_url: str) -> None:
    office = make_office(pg_url)
    token = office.token("wang")
    office.app.db.dispose()
    with serving(pg_url, "--workers", "2") as base:
        for _ in range(4):  # whichever worker answers, it knows the token (it is in the database)
            assert httpx.get(base + "/api/v1/me", headers=token, timeout=10).json()["name"] == "wang"
