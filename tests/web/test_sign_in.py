"""Signing in to the board (SPEC §12): the cookie's flags, CSRF on the form, a new session
id at every sign-in, sign-out ending the session server-side, time-outs, forged cookies,
the lockout and the second factor."""

from __future__ import annotations

from typing import Any

from duban.access import totp
from duban.access.settings import Security
from duban.web.factory import create_app
from tests.conftest import row_counts
from tests.web.conftest import PASSWORD, Office, csrf_of, hidden, sign_in

CASE_TABLES = ("cases", "case_units", "timers", "notices", "users", "units")


def case_rows(office: Office) -> dict[str, int]:
    counts = row_counts(office.url)
    return {t: counts[t] for t in CASE_TABLES}


def test_the_session_cookie_is_httponly_lax_and_secure(office: Office) -> None:
    c = office.client()
    r = sign_in(c, "wang", PASSWORD)
    assert r.status_code == 303
    assert r.headers["location"] == "/"
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("duban_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "secure", "path=/"} <= flags
    assert c.get("/").status_code == 200


def test_insecure_cookies_drop_only_secure(office: Office) -> None:
    from fastapi.testclient import TestClient

    web = create_app(office.app, office.access, secure_cookies=False)
    with TestClient(web, base_url="http://testserver", follow_redirects=False) as c:
        r = sign_in(c, "wang", PASSWORD)
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("duban_session="))
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert "httponly" in flags
        assert "secure" not in flags
        assert c.get("/").status_code == 200


def session_of(response: Any) -> str:
    """The session id a sign-in answer sets (its Set-Cookie header)."""
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("duban_session="))
    return str(cookie.split(";")[0].split("=", 1)[1])


def as_cookie(sid: str) -> dict[str, str]:
    return {"Cookie": f"duban_session={sid}"}


def test_a_new_session_id_at_every_sign_in(office: Office) -> None:
    c = office.client()
    form = c.get("/login", headers=as_cookie("planted-by-an-attacker"))
    r = c.post("/login", data={"username": "wang", "password": PASSWORD, "csrf_token": hidden(form.text, "csrf_token")},
               headers={"Cookie": f"duban_session=planted-by-an-attacker; duban_login_csrf={hidden(form.text, 'csrf_token')}"})
    first = session_of(r)
    assert first != "planted-by-an-attacker"
    second = session_of(sign_in(office.client(), "wang", PASSWORD))
    assert second != first
    assert office.client().get("/", headers=as_cookie(first)).status_code == 200  # two sessions, both live


def test_the_sign_in_form_needs_its_csrf_token(office: Office) -> None:
    c = office.client()
    c.get("/login")
    r = c.post("/login", data={"username": "wang", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403
    assert "duban_session" not in c.cookies
    r = office.client().post("/login", data={"username": "wang", "password": PASSWORD})
    assert r.status_code == 403


def test_logout_ends_the_session_on_the_server(office: Office) -> None:
    c = office.client()
    sid = session_of(sign_in(c, "fgj", PASSWORD))
    assert c.post("/logout", data={"csrf_token": "wrong"}).status_code == 403  # a forged sign-out does nothing
    assert c.get("/").status_code == 200
    r = c.post("/logout", data={"csrf_token": csrf_of(c)})
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    again = office.client()  # the old cookie, kept by someone
    assert again.get("/", headers=as_cookie(sid)).status_code == 303
    assert again.get("/api/v1/me", headers=as_cookie(sid)).status_code == 401


def test_a_forged_or_expired_cookie_goes_to_sign_in(office: Office) -> None:
    forged = office.client()
    r = forged.get(f"/cases/{office.case_id}", headers=as_cookie("x" * 43))
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next=/cases/{office.case_id}"
    assert 'duban_session=""' in r.headers["set-cookie"]  # cleared
    assert forged.get("/api/v1/me", headers=as_cookie("x" * 43)).status_code == 401
    c = office.signed_in("fgj")
    office.clock.advance(minutes=29)
    assert c.get("/").status_code == 200  # a request restarts the idle clock
    office.clock.advance(minutes=31)
    assert c.get("/").status_code == 303  # idle over 30 minutes
    c = office.signed_in("fgj")
    for _ in range(25):  # active all along, but 12 hours is the limit
        office.clock.advance(minutes=29)
        c.get("/")
    assert c.get("/").status_code == 303


def test_five_wrong_passwords_lock_even_the_right_one(office: Office) -> None:
    before = case_rows(office)
    c = office.client()
    for _ in range(4):
        r = sign_in(c, "fgj", "Wrong-password-1")
        assert r.status_code == 401
        assert "用户名或密码错误" in r.text
    r = sign_in(c, "fgj", "Wrong-password-1")
    assert r.status_code == 401
    assert "锁定" in r.text
    r = sign_in(c, "fgj", PASSWORD)
    assert r.status_code == 401
    assert "锁定" in r.text
    assert "duban_session" not in c.cookies
    assert case_rows(office) == before
    assert PASSWORD not in r.text
    office.clock.advance(minutes=16)
    assert sign_in(c, "fgj", PASSWORD).status_code == 303


def test_a_disabled_user_cannot_sign_in_and_their_session_ends(office: Office) -> None:
    c = office.signed_in("fgj")
    office.access.disable("fgj")
    assert c.get("/").status_code == 303
    r = sign_in(office.client(), "fgj", PASSWORD)
    assert r.status_code == 401
    assert "停用" in r.text


def test_totp_asks_for_the_code_and_checks_it(office: Office) -> None:
    secret_uri = office.access.provision_totp("wang")["uri"]
    secret = secret_uri.split("secret=")[1].split("&")[0]
    c = office.client()
    r = sign_in(c, "wang", PASSWORD)
    assert r.status_code == 401
    assert "动态口令" in r.text
    assert 'name="totp"' in r.text
    assert sign_in(c, "wang", PASSWORD, "000000").status_code == 401
    r = sign_in(c, "wang", PASSWORD, totp.code_at(secret, office.clock.now()))
    assert r.status_code == 303


def test_the_totp_field_is_on_the_form_when_a_role_needs_it(office: Office) -> None:
    from fastapi.testclient import TestClient

    from duban.access.service import Access
    from tests.web.conftest import cheap_hasher

    access = Access(office.app, hasher=cheap_hasher(), security=Security(frozenset({"office"})))
    with TestClient(create_app(office.app, access), base_url="https://testserver") as c:
        form = c.get("/login").text
        assert "动态口令" in form
        assert hidden(form, "csrf_token")
    assert "动态口令" not in office.client().get("/login").text


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(office: Office) -> None:
    c = office.client()
    form = c.get(f"/login?next=/cases/{office.case_id}")
    r = c.post("/login", data={"username": "wang", "password": PASSWORD, "next": f"/cases/{office.case_id}",
                               "csrf_token": hidden(form.text, "csrf_token")})
    assert r.headers["location"] == f"/cases/{office.case_id}"
    c = office.client()
    form = c.get("/login")
    r = c.post("/login", data={"username": "wang", "password": PASSWORD, "next": "//evil.example/",
                               "csrf_token": hidden(form.text, "csrf_token")})
    assert r.headers["location"] == "/"
