"""领导批示, 催办, 关注 and read receipts over HTTP (SPEC §13): each an audited event that
moves no state; wrong roles 403, another unit's case 404, a closed case refused — each bad
request leaving every table as it was."""

from __future__ import annotations

from tests.conftest import row_counts
from tests.web.conftest import Office, csrf_of


def fire(office: Office, who: str, trigger: str, note: str = "", case_id: int | None = None) -> object:
    return office.client().post(f"/api/v1/cases/{case_id or office.case_id}/fire",
                                json={"trigger": trigger, "note": note}, headers=office.token(who))


def test_a_leaders_instruction_is_on_the_timeline_and_notifies_the_lead_unit(office: Office) -> None:
    before = office.app.show(office.case_id)
    r = fire(office, "li", "instruct", "请于本周内报送进展")
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    after = r.json()  # type: ignore[attr-defined]
    assert after["state"] == before["state"]
    events = office.app.history(office.case_id)
    assert (events[-1]["action"], events[-1]["trigger_label"], events[-1]["note"]) == ("instructed", "领导批示", "请于本周内报送进展")
    notices = office.client().get("/api/v1/notices", headers=office.token("fgj")).json()
    assert [n["kind"] for n in notices] == ["领导批示"]
    page = office.signed_in("fgj").get(f"/cases/{office.case_id}").text
    assert "请于本周内报送进展" in page


def test_urge_writes_a_notice_now_and_is_refused_on_a_closed_case(office: Office) -> None:
    r = fire(office, "wang", "urge")
    assert r.status_code == 200  # type: ignore[attr-defined]
    kinds = [n["kind"] for n in office.app.notices(case_id=office.case_id)]
    assert kinds == ["催办通知"]
    for step, who in [("accept", "fgj"), ("report", "fgj"), ("verify", "wang")]:
        assert fire(office, who, step, "办理完毕").status_code == 200, step  # type: ignore[attr-defined]
    before = row_counts(office.url)
    r = fire(office, "wang", "urge")
    assert r.status_code == 409 and r.json()["error"] == "refused"  # type: ignore[attr-defined]
    assert row_counts(office.url) == before


def test_wrong_roles_are_403_and_another_units_case_404_with_nothing_written(office: Office) -> None:
    before = row_counts(office.url)
    for who, trigger in [("zhao", "instruct"), ("wang", "instruct"), ("fgj", "urge"), ("li", "watch"), ("zhao", "urge")]:
        r = fire(office, who, trigger, "x")
        assert r.status_code == 403, (who, trigger, r.text)  # type: ignore[attr-defined]
    r = fire(office, "scj", "instruct", "x")
    assert r.status_code == 404  # type: ignore[attr-defined]
    r = fire(office, "li", "instruct", "")  # an instruction needs its text
    assert r.status_code == 409  # type: ignore[attr-defined]
    assert row_counts(office.url) == before


def test_watch_lists_the_case_under_关注_and_survives_replay(office: Office) -> None:
    version = office.app.show(office.case_id)["version"]
    assert fire(office, "wang", "watch").status_code == 200  # type: ignore[attr-defined]
    assert office.app.show(office.case_id)["version"] == version  # an open form stays valid
    before = row_counts(office.url)
    assert fire(office, "wang", "watch").status_code == 409  # type: ignore[attr-defined]
    assert row_counts(office.url) == before
    c = office.signed_in("wang")
    page = c.get("/?tab=watched").text
    assert "报送一季度重点工作进展" in page and "取消关注" in c.get(f"/cases/{office.case_id}").text
    assert office.signed_in("fgj").get("/?tab=watched").status_code == 404
    from duban.service.state_check import check_state

    assert check_state(office.app).problems == []
    assert fire(office, "wang", "unwatch").status_code == 200  # type: ignore[attr-defined]
    assert "报送一季度重点工作进展" not in c.get("/?tab=watched").text
    assert check_state(office.app).problems == []


def test_the_case_page_forms_instruct_and_watch(office: Office) -> None:
    c = office.signed_in("li")
    page = c.get(f"/cases/{office.case_id}").text
    assert "领导批示" in page and 'id="note-urge"' not in page
    version = office.app.show(office.case_id)["version"]
    r = c.post(f"/cases/{office.case_id}/fire", data={"csrf_token": csrf_of(c, f"/cases/{office.case_id}"),
                                                     "trigger": "instruct", "note": "抓紧", "version": str(version)})
    assert r.status_code == 303, r.text
    assert office.app.history(office.case_id)[-1]["action"] == "instructed"


def test_read_receipts_count_unread_and_record_who_and_when(office: Office) -> None:
    fire(office, "wang", "urge")
    c = office.signed_in("fgj")
    mine = c.get("/api/v1/notices?unread=true", headers=office.token("fgj")).json()
    assert len(mine) == 1 and not mine[0]["read"]
    assert '<span class="count">1</span>' in c.get("/").text
    before = row_counts(office.url)
    assert office.client().post(f"/api/v1/notices/{mine[0]['id']}/read",
                                headers=office.token("scj")).status_code == 404  # not addressed to 区市场监管局
    assert office.client().post("/api/v1/notices/999/read", headers=office.token("fgj")).status_code == 404
    assert row_counts(office.url) == before
    r = c.post(f"/notices/{mine[0]['id']}/read", data={"csrf_token": csrf_of(c, "/notices")})
    assert r.status_code == 303
    assert c.get("/api/v1/notices?unread=true", headers=office.token("fgj")).json() == []
    read = office.app.notices(case_id=office.case_id)[0]["read_by"]
    assert [x["reader"] for x in read] == ["fgj"] and read[0]["read_at"].startswith("2027-03-01T09:00")
    assert '<span class="count">' not in c.get("/").text and "已读" in c.get("/notices").text
