"""Never a 500 for bad input (SPEC §13): text no person types — NUL, lone surrogates'
stand-ins, control characters, huge numbers — in every field and filter of the API and the
board's forms gets a 4xx answer naming what was wrong, on SQLite and on PostgreSQL (which
cannot store a NUL at all)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import row_counts
from tests.web.conftest import Office, csrf_of, hidden

ODD = ["\x00", "a\x00b", "\u202e", "\x1b[31m", "💥" * 300, "' OR 1=1 --", "9" * 40, "-1", "", " ", "\ufeff"]


@pytest.fixture(params=["sqlite", "postgres"])
def either(request: pytest.FixtureRequest) -> Office:
    office: Office = request.getfixturevalue("office" if request.param == "sqlite" else "pg_office")
    return office


@pytest.mark.parametrize("odd", ODD)
def test_odd_text_in_every_field_is_a_4xx(either: Office, odd: str) -> None:
    o = either
    c = o.client()
    base = {"workflow": "supervision", "title": "x", "lead_unit": "区发改局", "due": "5wd"}
    for key in ("workflow", "title", "lead_unit", "due", "report"):
        r = c.post("/api/v1/cases", json={**base, key: odd}, headers=o.token("wang"))
        assert r.status_code in (201, 422), (key, odd, r.text)
    for body in ({**base, "co_units": [odd]}, {**base, "data": {odd: "v"}}, {**base, "data": {"k": odd}},
                 {**base, "milestones": [{"due": odd, "title": odd}]}):
        assert c.post("/api/v1/cases", json=body, headers=o.token("wang")).status_code in (201, 422)
    before = row_counts(o.url)
    for body in ({"trigger": odd}, {"trigger": "accept", "note": odd, "data": {odd: odd}}):
        r = c.post(f"/api/v1/cases/{o.case_id}/fire", json=body, headers=o.token("czj"))
        assert r.status_code in (403, 409, 422), (body, r.text)
    for key in ("workflow", "state", "unit", "q", "due_before", "level", "limit", "cursor", "overdue"):
        r = c.get("/api/v1/cases", params={key: odd}, headers=o.token("wang"))
        assert r.status_code in (200, 422), (key, odd, r.text)
    for path in (f"/api/v1/cases/{quote(odd)}", f"/cases/{quote(odd)}"):
        assert c.get(path, headers=o.token("wang")).status_code in (404, 303, 307)  # "": the trailing-slash redirect
    assert c.get("/api/v1/me", headers={"Authorization": f"Bearer dbn_{quote(odd)}"}).status_code == 401
    assert row_counts(o.url) == before


@pytest.mark.parametrize("odd", ["\x00", "a\x00b", "\x1b", "💥"])
def test_odd_text_in_the_boards_forms_is_a_4xx(either: Office, odd: str) -> None:
    o = either
    stranger = o.client()
    form = stranger.get("/login")
    r = stranger.post("/login", data={"username": odd, "password": odd, "totp": odd,
                                      "csrf_token": hidden(form.text, "csrf_token")})
    assert r.status_code == 401
    c = o.signed_in("wang")
    token = csrf_of(c)
    before = row_counts(o.url)
    r = c.post("/cases/new", data={"csrf_token": token, "workflow": "supervision", "title": f"t{odd}",
                                   "lead_unit": odd, "due": odd})
    assert r.status_code == 422
    r = c.post(f"/cases/{o.case_id}/fire", data={"csrf_token": token, "trigger": odd, "version": "1", "note": odd,
                                                 f"field_{odd}": odd})
    assert r.status_code in (403, 409, 422)
    r = c.get("/cases", params={"q": odd, "state": odd, "level": odd})
    assert r.status_code in (200, 422)
    assert row_counts(o.url) == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["workflow", "title", "lead_unit", "co_units", "due", "data", "milestones",
                                        "report", "extra"]),
                       st.one_of(st.text(max_size=30), st.integers(), st.none(), st.booleans(),
                                 st.lists(st.text(max_size=5), max_size=3),
                                 st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)),
                       max_size=9))
def test_any_body_gets_an_answer_not_a_fault(office: Office, body: dict[str, object]) -> None:
    r = office.client().post("/api/v1/cases", json=body, headers=office.token("wang"))
    assert r.status_code in (201, 409, 422), r.text
    if r.status_code == 422:
        assert r.json()["field"]
