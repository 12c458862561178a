"""`/api/v1` (SPEC §13): every route, and the bad inputs of issue 13, each leaving the
database as it was (`row_counts` before and after)."""

from __future__ import annotations

import pytest

from tests.conftest import row_counts
from tests.web.conftest import Office, csrf_of


def test_me_names_the_token_holder(office: Office) -> None:
    r = office.client().get("/api/v1/me", headers=office.token("fgj"))
    assert r.status_code == 200
    assert r.json() == {"name": "fgj", "role": "unit", "role_label": "承办单位", "unit": "区发改局"}


@pytest.mark.parametrize("header", [None, "Bearer dbn_not-a-token", "Bearer ", "Basic d2FuZzpwdw==", "dbn_x"])
def test_no_or_bad_credentials_are_401(office: Office, header: str | None) -> None:
    before = row_counts(office.url)
    headers = {"Authorization": header} if header is not None else {}
    c = office.client()
    for method, path, body in [("GET", "/api/v1/cases", None), ("POST", "/api/v1/cases",
                               {"workflow": "supervision", "title": "x", "lead_unit": "区发改局", "due": "5wd"}),
                               ("POST", f"/api/v1/cases/{office.case_id}/fire", {"trigger": "accept"})]:
        r = c.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"] == "unauthenticated"
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert row_counts(office.url) == before


def test_a_disabled_users_token_stops_at_once(office: Office) -> None:
    headers = office.token("fgj")
    c = office.client()
    assert c.get("/api/v1/me", headers=headers).status_code == 200
    office.access.disable("fgj")
    before = row_counts(office.url)
    r = c.post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "accept"}, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"
    assert row_counts(office.url) == before


def test_a_revoked_token_stops_at_once(office: Office) -> None:
    made = office.access.create_token("wang")
    headers = {"Authorization": f"Bearer {made['token']}"}
    c = office.client()
    assert c.get("/api/v1/me", headers=headers).status_code == 200
    office.access.revoke_token(made["id"])
    assert c.get("/api/v1/me", headers=headers).status_code == 401


def test_todo_is_the_lead_units_with_nearest_deadline_first(office: Office) -> None:
    signing = office.case_id  # its 签收时限 ends tomorrow
    working = office.app.open_case("supervision", title="三日内报送", lead_unit="区发改局", co_units=[], due="3d",
                                   values={}, actor="wang")["id"]
    office.app.fire(working, "accept", actor="fgj")  # signed for: its 办结时限 in 3 days runs
    c = office.client()
    mine = c.get("/api/v1/todo", headers=office.token("fgj")).json()
    assert [t["id"] for t in mine] == [signing, working]
    assert mine[0]["my_triggers"] == ["accept"]
    assert mine[0]["remaining"] == "剩余 1 个工作日"
    assert mine[0]["card"] == "green"
    assert "report" in mine[1]["my_triggers"]
    # the co-unit sees the case but cannot move it: not on its to-do list
    assert c.get("/api/v1/todo", headers=office.token("czj")).json() == []
    # the office has nothing to do until a report comes in
    assert c.get("/api/v1/todo", headers=office.token("wang")).json() == []


def test_case_list_filters_and_cursor_pages(office: Office) -> None:
    for i in range(4):
        office.app.open_case("supervision", title=f"批量事项 {i}", lead_unit="区财政局", co_units=[], due="10wd",
                             values={}, actor="wang")
    c, headers = office.client(), office.token("wang")
    first = c.get("/api/v1/cases", params={"q": "批量", "limit": 3}, headers=headers).json()
    assert [x["title"] for x in first["items"]] == ["批量事项 0", "批量事项 1", "批量事项 2"]
    second = c.get("/api/v1/cases", params={"q": "批量", "limit": 3, "cursor": first["next_cursor"]},
                   headers=headers).json()
    assert [x["title"] for x in second["items"]] == ["批量事项 3"]
    assert second["next_cursor"] is None
    by_unit = c.get("/api/v1/cases", params={"unit": "区发改局"}, headers=headers).json()["items"]
    assert [x["id"] for x in by_unit] == [office.case_id]
    assert c.get("/api/v1/cases", params={"overdue": "true"}, headers=headers).json()["items"] == []
    assert len(c.get("/api/v1/cases", params={"level": 0}, headers=headers).json()["items"]) == 5
    assert len(c.get("/api/v1/cases", params={"due_before": "2027-03-20"}, headers=headers).json()["items"]) == 5
    assert c.get("/api/v1/cases", params={"due_before": "2027-03-10"}, headers=headers).json()["items"] == []
    # a unit sees only its own cases (lead or co-unit)
    scj = c.get("/api/v1/cases", headers=office.token("scj")).json()["items"]
    assert scj == []
    czj = c.get("/api/v1/cases", headers=office.token("czj")).json()["items"]
    assert len(czj) == 5  # four it leads, one it co-handles


@pytest.mark.parametrize(("params", "field"), [({"limit": 201}, "limit"), ({"limit": 0}, "limit"),
                                               ({"limit": "many"}, "limit"), ({"level": 9}, "level"),
                                               ({"overdue": "maybe"}, "overdue"), ({"state": "nowhere"}, "state"),
                                               ({"workflow": "nope"}, "workflow"), ({"unit": "无此单位"}, "lead_unit"),
                                               ({"due_before": "soon"}, "due_before")])
def test_bad_list_filters_are_422_naming_the_field(office: Office, params: dict[str, object], field: str) -> None:
    r = office.client().get("/api/v1/cases", params=params, headers=office.token("wang"))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid"
    assert r.json()["field"] == field


def test_open_a_case_201_with_location_and_etag(office: Office) -> None:
    c = office.client()
    body = {"workflow": "supervision", "title": "落实会议议定事项", "lead_unit": "区财政局", "co_units": ["区发改局"],
            "due": "15wd", "milestones": [{"due": "2027-03-10", "title": "完成方案"}]}
    r = c.post("/api/v1/cases", json=body, headers=office.token("wang"))
    assert r.status_code == 201, r.text
    case = r.json()
    assert r.headers["Location"] == f"/api/v1/cases/{case['id']}"
    assert r.headers["ETag"] == f'"{case["version"]}"'
    assert case["opened_by"] == "wang"  # the signed-in user, never a field of the body
    assert case["co_units"] == ["区发改局"]
    shown = c.get(r.headers["Location"], headers=office.token("czj"))
    assert shown.status_code == 200
    assert shown.json()["title"] == "落实会议议定事项"


BAD_BODIES = [
    ('{"workflow": "supervision", "title": ', "body"),  # malformed JSON
    ('[1, 2]', "body"),
    ('{"workflow": "supervision", "title": "x", "lead_unit": "区发改局", "due": "5wd", "colour": "red"}', "colour"),
    ('{"workflow": "nosuch", "title": "x", "lead_unit": "区发改局", "due": "5wd"}', "workflow"),
    ('{"workflow": "supervision", "title": "x", "lead_unit": "区发改局", "due": "soonish"}', "due"),
    ('{"workflow": "supervision", "title": "x", "lead_unit": "无此单位", "due": "5wd"}', "lead_unit"),
    ('{"workflow": "supervision", "title": "x", "lead_unit": "区发改局", "co_units": ["无此单位"], "due": "5wd"}', "co_units"),
    ('{"workflow": "supervision", "title": "x", "due": "5wd"}', "lead_unit"),
    ('{"workflow": "supervision", "title": 7, "lead_unit": "区发改局", "due": "5wd"}', "title"),
    ('{"workflow": "supervision", "title": "x", "lead_unit": "区发改局", "due": "5wd", "data": {"k": 1}}', "data.k"),
    ('{"workflow": "supervision", "title": "   ", "lead_unit": "区发改局", "due": "5wd"}', "title"),
    ('{"workflow": "supervision", "title": "x", "lead_unit": "区发改局", "due": "2020-01-01"}', "due"),
]


@pytest.mark.parametrize(("raw", "field"), BAD_BODIES)
def test_bad_case_bodies_are_422_naming_the_field(office: Office, raw: str, field: str) -> None:
    before = row_counts(office.url)
    r = office.client().post("/api/v1/cases", content=raw.encode(),
                             headers={**office.token("wang"), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid"
    assert r.json()["field"] == field
    assert r.json()["message"]
    assert row_counts(office.url) == before


def test_an_inspector_writing_is_403(office: Office) -> None:
    before = row_counts(office.url)
    c, headers = office.client(), office.token("zhao")
    r = c.post("/api/v1/cases", json={"workflow": "supervision", "title": "x", "lead_unit": "区发改局", "due": "5wd"},
               headers=headers)
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"
    r = c.post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "accept"}, headers=headers)
    assert r.status_code == 403
    assert row_counts(office.url) == before
    assert c.get(f"/api/v1/cases/{office.case_id}", headers=headers).status_code == 200  # reads everything


def test_another_units_case_is_404_like_no_case(office: Office) -> None:
    before = row_counts(office.url)
    c, headers = office.client(), office.token("scj")
    for method, path in [("GET", f"/api/v1/cases/{office.case_id}"), ("GET", f"/api/v1/cases/{office.case_id}/events"),
                         ("POST", f"/api/v1/cases/{office.case_id}/fire"), ("GET", "/api/v1/cases/999999"),
                         ("GET", "/api/v1/cases/abc"), ("GET", "/api/v1/cases/99999999999999999999999")]:
        r = c.request(method, path, json={"trigger": "accept"} if method == "POST" else None, headers=headers)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"] == "not_found"
    assert row_counts(office.url) == before


def test_fire_with_if_match_then_a_stale_one_is_412(office: Office) -> None:
    c, headers = office.client(), office.token("fgj")
    shown = c.get(f"/api/v1/cases/{office.case_id}", headers=headers)
    etag = shown.headers["ETag"]
    assert shown.json()["my_triggers"] == ["accept", "request_extension"]
    r = c.post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "accept", "note": "已签收"},
               headers={**headers, "If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "in_progress"
    assert r.headers["ETag"] != etag
    before = row_counts(office.url)
    r = c.post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "report", "note": "已完成"},
               headers={**headers, "If-Match": etag})
    assert r.status_code == 412
    assert r.json()["error"] == "conflict"
    assert f'"{r.json()["version"]}"' == c.get(f"/api/v1/cases/{office.case_id}", headers=headers).headers["ETag"]
    assert row_counts(office.url) == before


def test_a_trigger_not_allowed_now_is_409_with_what_is(office: Office) -> None:
    before = row_counts(office.url)
    c = office.client()
    r = c.post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "report"}, headers=office.token("fgj"))
    assert r.status_code == 409
    assert r.json()["error"] == "refused"
    assert r.json()["allowed"] == ["accept", "request_extension"]
    r = c.post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "fly"}, headers=office.token("fgj"))
    assert r.status_code == 409
    assert r.json()["allowed"] == ["accept", "request_extension"]
    # a guard: reject needs a note
    office.app.fire(office.case_id, "accept", actor="fgj")
    office.app.fire(office.case_id, "report", actor="fgj")
    before = row_counts(office.url)
    r = c.post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "reject"}, headers=office.token("wang"))
    assert r.status_code == 409
    assert "verify" in r.json()["allowed"]
    assert row_counts(office.url) == before


def test_a_co_unit_may_not_move_the_case(office: Office) -> None:
    before = row_counts(office.url)
    r = office.client().post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "accept"},
                             headers=office.token("czj"))
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"
    assert row_counts(office.url) == before


@pytest.mark.parametrize(("raw", "field"), [('{"trigger": "accept", "by": "wang"}', "by"), ('{"note": "x"}', "trigger"),
                                            ('{"trigger": "accept", "data": []}', "data"), ("{", "body")])
def test_bad_fire_bodies_are_422(office: Office, raw: str, field: str) -> None:
    before = row_counts(office.url)
    r = office.client().post(f"/api/v1/cases/{office.case_id}/fire", content=raw.encode(),
                             headers={**office.token("fgj"), "Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["field"] == field
    assert row_counts(office.url) == before


def test_cookie_calls_need_the_csrf_header(office: Office) -> None:
    c = office.signed_in("fgj")
    assert c.get("/api/v1/me").json()["name"] == "fgj"
    before = row_counts(office.url)
    r = c.post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "accept"})
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"
    r = c.post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "accept"}, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    assert row_counts(office.url) == before
    r = c.post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "accept"},
               headers={"X-CSRF-Token": csrf_of(c)})
    assert r.status_code == 200


def test_events_notices_reports_and_verify(office: Office) -> None:
    c = office.client()
    office.app.fire(office.case_id, "accept", actor="fgj")
    events = c.get(f"/api/v1/cases/{office.case_id}/events", headers=office.token("czj")).json()
    assert [e["trigger_label"] or e["action_label"] for e in events] == ["交办", "签收"]
    office.clock.advance(days=20)
    office.app.tick()
    notices = c.get("/api/v1/notices", headers=office.token("fgj")).json()
    assert notices
    assert all(n["recipient"] == "区发改局" for n in notices)
    assert c.get("/api/v1/notices", headers=office.token("scj")).json() == []
    units = c.get("/api/v1/reports/units", params={"since": "2027-01-01"}, headers=office.token("li"))
    assert units.status_code == 200
    assert units.json()["report"] == "units"
    assert c.get("/api/v1/reports/units", headers=office.token("fgj")).status_code == 403
    bad = c.get("/api/v1/reports/units", params={"since": "yesterday"}, headers=office.token("li"))
    assert bad.status_code == 422
    assert bad.json()["field"] == "since"
    verified = c.get("/api/v1/audit/verify", headers=office.token("zhao")).json()
    assert verified["ok"] is True
    assert verified["events"] > 0
    assert verified["first_bad"] is None
    assert c.get("/api/v1/audit/verify", headers=office.token("li")).status_code == 403


def test_a_script_title_is_stored_verbatim_and_shown_escaped(office: Office) -> None:
    title = "<script>alert('x')</script> '; DROP TABLE cases; -- 🚩 \u202eRTL"
    c = office.client()
    r = c.post("/api/v1/cases", json={"workflow": "supervision", "title": title, "lead_unit": "区发改局", "due": "5wd"},
               headers=office.token("wang"))
    assert r.status_code == 201
    assert c.get(r.headers["Location"], headers=office.token("wang")).json()["title"] == title
    page = office.signed_in("fgj").get(f"/cases/{r.json()['id']}").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "🚩" in page


def test_a_body_over_the_limit_is_413(office: Office) -> None:
    before = row_counts(office.url)
    big = '{"workflow": "supervision", "title": "' + "长" * 600_000 + '", "lead_unit": "区发改局", "due": "5wd"}'
    r = office.client().post("/api/v1/cases", content=big.encode(),
                             headers={**office.token("wang"), "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"
    assert row_counts(office.url) == before


def test_openapi_is_served_and_no_cdn_docs(office: Office) -> None:
    c = office.client()
    doc = c.get("/api/v1/openapi.json").json()
    assert "/api/v1/cases/{case_id}/fire" in doc["paths"]
    assert "/login" not in doc["paths"]  # pages are not API
    assert c.get("/docs").status_code == 404
    assert c.get("/redoc").status_code == 404
    assert c.get("/api/v1/nowhere", headers=office.token("wang")).json()["error"] == "not_found"


@pytest.mark.postgres
def test_api_on_postgres(pg_office: Office) -> None:
    o = pg_office
    c = o.client()
    r = c.post("/api/v1/cases", json={"workflow": "supervision", "title": "PG 事项", "lead_unit": "区财政局", "due": "5wd"},
               headers=o.token("wang"))
    assert r.status_code == 201
    new = r.json()["id"]
    before = row_counts(o.url)
    assert c.get(f"/api/v1/cases/{new}", headers=o.token("fgj")).status_code == 404
    stale = c.post(f"/api/v1/cases/{new}/fire", json={"trigger": "accept"}, headers={**o.token("czj"), "If-Match": '"0"'})
    assert stale.status_code == 412
    bad = c.post("/api/v1/cases", json={"workflow": "supervision", "title": "x", "lead_unit": "无此单位", "due": "5wd"},
                 headers=o.token("wang"))
    assert bad.status_code == 422
    assert bad.json()["field"] == "lead_unit"
    assert row_counts(o.url) == before
    ok = c.post(f"/api/v1/cases/{new}/fire", json={"trigger": "accept"},
                headers={**o.token("czj"), "If-Match": c.get(f"/api/v1/cases/{new}", headers=o.token("czj")).headers["ETag"]})
    assert ok.status_code == 200
    assert ok.json()["state"] == "in_progress"
