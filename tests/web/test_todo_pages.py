"""我的待办, 已办 and 协办 a page at a time (issue 16): the board's 下一页 (no JavaScript), the
API's cursor (`GET /api/v1/todo?limit=&cursor=`, the list kept as its answer), a bad cursor
refused with 422, and the ledger's downloads streamed page by page with the same bytes as
the whole list written at once; `case list --limit / --after` a page of the CLI's list.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest

from duban.present.output import timed, to_csv
from duban.web import query
from duban.web.case_pages import CSV_COLUMNS
from tests.conftest import Duban
from tests.web.conftest import Office


def _open(office: Office, n: int, lead: str = "区发改局", co: list[str] | None = None) -> list[int]:
    return [office.app.open_case("supervision", title=f"分页事项{i:02d}", lead_unit=lead, co_units=co or [],
                                 due=f"{5 + i % 7}wd", values={}, actor="wang")["id"] for i in range(n)]


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'href="/cases/(\d+)"', html)]


def _next_link(html: str) -> str | None:
    m = re.search(r'href="(/\?[^"]*cursor=[^"]*)"[^>]*>下一页', html)
    return m.group(1).replace("&amp;", "&") if m else None


def test_the_board_pages_the_to_do_by_next_links(office: Office) -> None:
    """A unit with 61 cases to sign for sees 50, then 11 through 下一页, in the API's order."""
    _open(office, 60)
    c = office.signed_in("fgj")
    first = c.get("/")
    assert first.status_code == 200
    shown = list(dict.fromkeys(_ids(first.text)))
    assert len(shown) == 50
    link = _next_link(first.text)
    assert link is not None
    second = c.get(link)
    assert second.status_code == 200
    rest = list(dict.fromkeys(_ids(second.text)))
    assert len(rest) == 11 and not set(rest) & set(shown)
    assert _next_link(second.text) is None and "第一页" in second.text
    api = office.client().get("/api/v1/todo", params={"limit": 200}, headers=office.token("fgj")).json()
    assert [t["id"] for t in api] == shown + rest


def test_the_api_pages_the_to_do_with_a_cursor_in_the_headers(office: Office) -> None:
    _open(office, 6)
    c, headers = office.client(), office.token("fgj")
    whole = [t["id"] for t in c.get("/api/v1/todo", headers=headers).json()]
    assert len(whole) == 7
    got, params = [], {"limit": 3}
    while True:
        r = c.get("/api/v1/todo", params=params, headers=headers)
        assert r.status_code == 200 and isinstance(r.json(), list)
        got += [t["id"] for t in r.json()]
        if "X-Next-Cursor" not in r.headers:
            assert "Link" not in r.headers
            break
        assert r.headers["Link"] == f'</api/v1/todo?limit=3&cursor={r.headers["X-Next-Cursor"]}>; rel="next"'
        params = {"limit": 3, "cursor": r.headers["X-Next-Cursor"]}
    assert got == whole


@pytest.mark.parametrize("cursor", ["x", "12", "_", "_x", "1_2_3", "--1_2", "9" * 30 + "_1", "1_" + "9" * 20,
                                    "１_2", "\x00_1"])
def test_a_bad_cursor_is_422_on_the_api_and_the_board(office: Office, cursor: str) -> None:
    r = office.client().get("/api/v1/todo", params={"cursor": cursor}, headers=office.token("fgj"))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid" and r.json()["field"] == "cursor"
    page = office.signed_in("fgj").get("/", params={"cursor": cursor})
    assert page.status_code == 422
    assert "游标" in page.text


def test_done_and_co_handled_tabs_page_too(office: Office) -> None:
    """已办 (what wang opened) and 协办 (区财政局 co-handles) with more than a page each."""
    ids = _open(office, 55, co=["区财政局"])
    for who, tab in (("wang", "done"), ("czj", "co")):
        client = office.signed_in(who)
        first = client.get("/", params={"tab": tab}).text
        link = _next_link(first)
        assert link is not None and f"tab={tab}" in link
        both = list(dict.fromkeys(_ids(first))) + list(dict.fromkeys(_ids(client.get(link).text)))
        assert sorted(both) == sorted([office.case_id, *ids]), tab


def test_the_csv_download_is_the_whole_list_written_at_once(office: Office) -> None:
    _open(office, 8, co=["区财政局"])
    c = office.signed_in("wang")
    for params in ({}, {"unit": "区财政局"}, {"q": "分页"}, {"q": "ＡＢ"}):
        got = c.get("/cases.csv", params=params)
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        from duban.access.service import User

        f = query.Filters(unit=params.get("unit"), q=params.get("q"))
        expected = to_csv(timed(query.cases(office.app, User("wang", "office", None), f)), CSV_COLUMNS)
        assert got.content == expected.encode("utf-8")
    rows = list(csv.reader(io.StringIO(c.get("/cases.csv").content.decode("utf-8-sig"))))
    assert len(rows) == 1 + 9


def test_the_downloads_pages_are_the_whole_list(office: Office) -> None:
    """`query.pages` (what the downloads walk) gives every case once, in id order, page by page."""
    from duban.access.service import User

    _open(office, 7)
    for user in (User("wang", "office", None), User("czj", "unit", "区财政局")):
        for f in (query.Filters(), query.Filters(q="分页"), query.Filters(q="ab")):
            pages: list[list[dict[str, Any]]] = list(query.pages(office.app, user, f, size=3))
            assert all(0 < len(p) <= 3 for p in pages)
            assert [c for p in pages for c in p] == query.cases(office.app, user, f)


def test_a_bad_filter_on_a_download_is_refused_before_anything_is_sent(office: Office) -> None:
    c = office.signed_in("wang")
    for path in ("/cases.csv", "/cases.xlsx"):
        r = c.get(path, params={"state": "飞行中"})
        assert r.status_code in (400, 422), (path, r.status_code)
        assert "飞行中" in r.text


def test_case_list_pages_with_limit_and_after(duban: Duban) -> None:
    for i in range(5):
        duban.ok("case", "open", "supervision", "--title", f"事项{i}", "--unit", "区发改局", "--due", "10wd",
                 actor="wang")
    every = [c["id"] for c in duban.ok("case", "list", "--unit", "区发改局", "--json").json]
    first = duban.ok("case", "list", "--unit", "区发改局", "--limit", "2", "--json")
    assert [c["id"] for c in first.json] == every[:2]
    assert f"--after {every[1]} --limit 2" in first.stderr
    rest = duban.ok("case", "list", "--unit", "区发改局", "--after", str(every[1]), "--json")
    assert [c["id"] for c in rest.json] == every[2:]
    assert duban("case", "list", "--limit", "0").code == 2
