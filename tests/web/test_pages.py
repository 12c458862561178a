"""The board's pages (SPEC §13) through a test client: what a person reads on each, and the
forms' refusals (bad value beside its field, stale form, missing CSRF) changing nothing."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.conftest import row_counts
from tests.web.conftest import Office, csrf_of


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_pages_need_sign_in(office: Office) -> None:
    c = office.client()
    for path in ["/", "/cases", "/cases/new", f"/cases/{office.case_id}", "/board", "/notices"]:
        r = c.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=")


def test_todo_shows_remaining_time_card_and_actions(office: Office) -> None:
    c = office.signed_in("fgj")
    page = text_of(c.get("/").text)
    assert "报送一季度重点工作进展" in page
    assert "签收时限" in page
    assert "剩余 1 个工作日" in page
    assert "绿" in page
    assert "签收" in page
    office.clock.advance(days=2)  # Wednesday: the 签收时限 (Tuesday) has passed unmet
    page = text_of(office.signed_in("fgj").get("/").text)
    assert "已超期 1 个工作日" in page
    assert "红牌" in page
    assert text_of(office.signed_in("czj").get("/?tab=co").text).count("报送一季度重点工作进展") == 1
    assert "暂无待办事项" in text_of(office.signed_in("czj").get("/").text)


def test_done_tab_lists_what_i_acted_on(office: Office) -> None:
    c = office.signed_in("fgj")
    assert "还没有办理过的事项" in c.get("/?tab=done").text
    office.app.fire(office.case_id, "accept", actor="fgj")
    assert "报送一季度重点工作进展" in c.get("/?tab=done").text
    assert c.get("/?tab=watch").status_code == 404


def test_the_ledger_counts_up_to_its_cap(office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past COUNT_CAP matches the board says "more than" instead of counting every row."""
    from duban.storage import listing
    from duban.web import case_pages, query

    for module in (listing, query, case_pages):
        monkeypatch.setattr(module, "COUNT_CAP", 20)
    for i in range(21):
        office.app.open_case("supervision", title=f"台账事项{i:02d}", lead_unit="区财政局", co_units=[], due="10wd",
                             values={}, actor="wang")
    c = office.signed_in("wang")
    more = text_of(c.get("/cases", params={"q": "台账"}).text)
    assert "20 件以上" in more and "共 21 件" not in more
    assert "共 1 件" in text_of(c.get("/cases", params={"q": "台账事项07"}).text)  # under the cap: exact
    assert "20 件以上" in text_of(c.get("/cases", params={"q": "台账事项", "state": ""}).text)


def test_ledger_filters_search_pages_and_csv(office: Office) -> None:
    for i in range(55):
        office.app.open_case("supervision", title=f"台账事项{i:02d}", lead_unit="区财政局", co_units=[], due="10wd",
                             values={}, actor="wang")
    c = office.signed_in("wang")
    first = c.get("/cases", params={"q": "台账"}).text
    assert "共 55 件" in first
    assert "台账事项49" in first
    assert "台账事项50" not in first
    nxt = re.search(r'href="(/cases\?[^"]*cursor=\d+[^"]*)"', first)
    assert nxt
    second = c.get(nxt.group(1).replace("&amp;", "&")).text
    assert "台账事项54" in second
    assert "台账事项00" not in second
    only = c.get("/cases", params={"unit": "区发改局"}).text
    assert "报送一季度重点工作进展" in only
    assert "台账事项" not in only
    bad = c.get("/cases", params={"state": "飞行中"})
    assert bad.status_code == 422
    assert "飞行中" in text_of(bad.text)
    got = c.get("/cases.csv", params={"unit": "区发改局"})
    assert got.headers["content-type"].startswith("text/csv")
    assert got.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["编号", "流程", "状态", "标题"]
    assert [r[3] for r in rows[1:]] == ["报送一季度重点工作进展"]


def test_a_unit_sees_only_its_units_cases(office: Office) -> None:
    c = office.signed_in("scj")
    assert "报送一季度重点工作进展" not in c.get("/cases").text
    r = c.get(f"/cases/{office.case_id}")
    assert r.status_code == 404
    assert "未找到" in r.text
    assert "报送一季度重点工作进展" not in r.text


def test_open_a_case_from_the_form(office: Office) -> None:
    c = office.signed_in("wang")
    form = c.get("/cases/new")
    assert "交办事项" in form.text
    r = c.post("/cases/new", data={"csrf_token": csrf_of(c, "/cases/new"), "workflow": "supervision",
                                   "title": "整治窗口服务", "lead_unit": "区市场监管局", "co_units": ["区发改局"],
                                   "due": "2027-04-30", "milestones": "2027-03-31=完成摸排"})
    assert r.status_code == 303
    page = c.get(r.headers["location"]).text
    assert "整治窗口服务" in page
    assert "区市场监管局" in page
    assert "时间节点" in page or "完成摸排" in page


def test_a_bad_value_is_shown_beside_its_field_and_nothing_saved(office: Office) -> None:
    c = office.signed_in("wang")
    token = csrf_of(c, "/cases/new")
    before = row_counts(office.url)
    r = c.post("/cases/new", data={"csrf_token": token, "workflow": "supervision", "title": "整治窗口服务",
                                   "lead_unit": "区市场监管局", "due": "下个月"})
    assert r.status_code == 422
    beside_due = re.search(r'id="due"[^>]*>\s*<p class="field-error"[^>]*>([^<]*)</p>', r.text)
    assert beside_due, r.text
    assert "下个月" in beside_due.group(1)
    assert 'value="整治窗口服务"' in r.text  # what was typed is kept
    r = c.post("/cases/new", data={"csrf_token": token, "workflow": "supervision", "title": "x",
                                   "lead_unit": "无此单位", "due": "5wd"})
    assert r.status_code == 422
    assert re.search(r'id="lead_unit".*?</select>\s*<p class="field-error"', r.text, re.S)
    assert row_counts(office.url) == before


def test_forms_without_csrf_are_refused(office: Office) -> None:
    c = office.signed_in("fgj")
    before = row_counts(office.url)
    r = c.post(f"/cases/{office.case_id}/fire", data={"trigger": "accept", "version": "1"})
    assert r.status_code == 403
    r = c.post("/cases/new", data={"workflow": "supervision", "title": "x", "lead_unit": "区发改局", "due": "5wd"},
               )
    assert r.status_code == 403
    assert row_counts(office.url) == before


def test_act_from_the_case_page_and_a_stale_form_is_refused(office: Office) -> None:
    fgj = office.signed_in("fgj")
    page = fgj.get(f"/cases/{office.case_id}").text
    assert '<button type="submit">签收</button>' in page
    version = re.search(r'name="trigger" value="accept">\s*<input type="hidden" name="version" value="(\d+)"', page)
    assert version
    token = csrf_of(fgj)
    r = fgj.post(f"/cases/{office.case_id}/fire", data={"csrf_token": token, "trigger": "accept",
                                                        "version": version.group(1), "note": "收到"})
    assert r.status_code == 303
    after = fgj.get(r.headers["location"]).text
    assert "已完成：签收" in after
    assert "办理中" in after
    assert "报告办理情况" in after
    before = row_counts(office.url)
    stale = fgj.post(f"/cases/{office.case_id}/fire", data={"csrf_token": token, "trigger": "report",
                                                            "version": version.group(1), "note": "已办"})
    assert stale.status_code == 409
    assert "此事项已被他人更新" in stale.text
    assert "办理中" in stale.text  # the fresh case
    assert row_counts(office.url) == before


def test_a_refused_action_says_why_on_the_page(office: Office) -> None:
    office.app.fire(office.case_id, "accept", actor="fgj")
    office.app.fire(office.case_id, "report", actor="fgj")
    c = office.signed_in("wang")
    page = c.get(f"/cases/{office.case_id}").text
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    before = row_counts(office.url)
    r = c.post(f"/cases/{office.case_id}/fire", data={"csrf_token": csrf_of(c), "trigger": "reject",
                                                      "version": version.group(1), "note": ""})
    assert r.status_code == 409
    assert "note" in r.text
    assert row_counts(office.url) == before
    r = c.post(f"/cases/{office.case_id}/fire", data={"csrf_token": csrf_of(c), "trigger": "reject",
                                                      "version": version.group(1), "note": "补充数据"})
    assert r.status_code == 303
    timeline = text_of(c.get(f"/cases/{office.case_id}").text)
    assert "退回重办" in timeline
    assert "补充数据" in timeline


def test_board_draws_cards_per_unit_in_svg(office: Office) -> None:
    signed = office.app.open_case("supervision", title="财政事项", lead_unit="区财政局", co_units=[], due="3d",
                                  values={}, actor="wang")["id"]
    office.app.fire(signed, "accept", actor="czj")
    office.clock.advance(days=3)  # the 发改局 case is past its 签收时限: red; the 财政局 one a day from due: yellow
    office.app.tick()
    page = office.signed_in("li").get("/board").text
    assert "<svg" in page
    assert re.search(r"<title>区发改局 红牌 1 件</title>", page)
    assert re.search(r"<title>区财政局 黄牌 1 件</title>", page)
    own = office.signed_in("czj").get("/board").text
    assert "区财政局" in own
    assert "区发改局" not in text_of(own).split("按时率")[-1]


def test_notices_page_and_static_css(office: Office) -> None:
    office.clock.advance(days=20)
    office.app.tick()
    c = office.signed_in("fgj")
    page = c.get("/notices").text
    assert "催办通知" in page
    assert re.search(r'<span class="count">\d+</span>', page)
    css = c.get("/static/duban.css")
    assert css.status_code == 200
    assert "@media" in css.text
    assert "http" not in page.split("<body>")[0].replace('href="/static', "")  # no asset from elsewhere
