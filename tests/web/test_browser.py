"""The board in a real browser: headless Chromium (Debian's, /usr/bin/chromium) driven by
Playwright against a real uvicorn server on a free 127.0.0.1 port, as people use it.

Skipped with the reason when Chromium is missing, unless DUBAN_REQUIRE_BROWSER=1 (CI),
which makes a missing browser a failure. With DUBAN_SCREENSHOTS=1 the run saves the
README's screenshots to docs/screenshots/.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import PASSWORD, Office, make_office

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _need_browser() -> None:
    reason = None
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install playwright)"
    if reason is None:
        return
    if os.environ.get("DUBAN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; DUBAN_REQUIRE_BROWSER=1 makes the browser tests required")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A uvicorn server in a thread, serving one office's board."""

    def __init__(self, office: Office) -> None:
        import uvicorn

        from duban.web.factory import create_app

        self.office = office
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        web = create_app(office.app, office.access, secure_cookies=False)  # plain HTTP: --insecure-cookies
        self.server = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)  # waiting for a server thread, not for the clock
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def served(sqlite_url: str) -> Iterator[Served]:
    _need_browser()
    office = make_office(sqlite_url)
    with Served(office) as s:
        yield s
    office.app.db.dispose()


@pytest.fixture
def browser() -> Iterator[Any]:
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Person:
    """One person's browser window; records every request the page makes."""

    def __init__(self, browser: Any, served: Served, *, phone: bool = False) -> None:
        size = {"width": 390, "height": 844} if phone else {"width": 1100, "height": 900}
        self.context = browser.new_context(viewport=size, locale="zh-CN", device_scale_factor=1)
        self.page = self.context.new_page()
        self.base = served.base
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))

    def sign_in(self, name: str, password: str = PASSWORD) -> None:
        self.page.goto(self.base + "/login")
        self.page.get_by_label("用户名").fill(name)
        self.page.get_by_label("密码").fill(password)
        self.page.get_by_role("button", name="登录").click()

    def act(self, label: str, note: str = "") -> None:
        if note:
            self.page.get_by_label(f"说明（{label}）").fill(note)
        self.page.get_by_role("button", name=label, exact=True).click()
        self.page.wait_for_load_state()

    def shot(self, name: str) -> None:
        if os.environ.get("DUBAN_SCREENSHOTS") == "1":
            SHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def foreign(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(self.base + "/")]


def _sample(office: Office) -> None:
    """A few more cases, so that three days on the board has every card: 区发改局 a red one
    (past due) and a yellow one (due tomorrow) besides the fixture's unsigned case (red),
    区财政局 a green one, 区市场监管局 one never signed for (red)."""
    app = office.app
    red = app.open_case("supervision", title="清理过期政策并形成书面报告", lead_unit="区发改局", co_units=[], due="2d",
                        values={}, actor="wang")["id"]
    yellow = app.open_case("supervision", title="建立未落实政策问题台帐", lead_unit="区发改局", co_units=["区财政局"],
                           due="3wd", values={}, actor="wang")["id"]
    green = app.open_case("supervision", title="公布行政许可证明事项清单", lead_unit="区财政局", co_units=[], due="20wd",
                          values={}, actor="wang")["id"]
    app.open_case("supervision", title="推进“六证合一”改革", lead_unit="区市场监管局", co_units=[], due="3d", values={},
                  actor="wang")
    for case_id, who in ((red, "fgj"), (yellow, "fgj"), (green, "czj")):
        app.fire(case_id, "accept", actor=who)


def test_a_case_from_opening_to_verified(served: Served, browser: Any) -> None:
    office = served.office
    _sample(office)
    wang = Person(browser, served)
    wang.sign_in("wang")
    assert wang.page.get_by_role("heading", name="我的待办").is_visible()
    wang.page.get_by_role("link", name="交办", exact=True).click()
    wang.page.get_by_label("标题").fill("落实作风转变年督查问效工作")
    wang.page.get_by_label("牵头单位").select_option("区发改局")
    wang.page.get_by_label("办结时限").fill("10wd")
    wang.page.get_by_role("button", name="交办", exact=True).click()
    wang.page.wait_for_load_state()
    assert "已交办" in wang.page.inner_text("main")
    case_url = wang.page.url
    assert "/cases/" in case_url

    fgj = Person(browser, served, phone=True)
    fgj.sign_in("fgj")
    item = fgj.page.locator("li.item", has_text="落实作风转变年督查问效工作")
    assert "剩余 1 个工作日" in item.inner_text()
    assert "绿" in item.inner_text()

    office.clock.advance(minutes=20)  # twenty minutes later the unit signs for it, then reports
    fgj.page.reload()
    fgj.shot("todo")
    item = fgj.page.locator("li.item", has_text="落实作风转变年督查问效工作")
    item.get_by_role("link", name="落实作风转变年督查问效工作").click()
    fgj.act("签收", "已收到，由综合科办理")
    assert "已完成：签收" in fgj.page.inner_text("main")
    fgj.act("报告办理情况", "已完成督查问效工作方案")
    assert "已报告" in fgj.page.inner_text("main")

    wang.page.goto(case_url)
    wang.act("退回重办", "请补充第三季度数据")
    main = wang.page.inner_text("main")
    assert "办理中" in main
    assert "请补充第三季度数据" in main

    fgj.page.set_viewport_size({"width": 1100, "height": 900})  # the to-do was shot at a phone's width
    fgj.page.goto(case_url)
    fgj.shot("case")  # sent back: its deadlines, the timeline with the office's note, the unit's forms
    fgj.act("报告办理情况", "已补充第三季度数据")
    wang.page.reload()
    wang.act("审核办结")
    main = wang.page.inner_text("main")
    assert "已办结" in main
    assert [t in main for t in ("交办", "签收", "退回重办", "审核办结")] == [True] * 4

    office.clock.advance(days=3)  # the sample's deadlines come due: yellow and red cards
    office.app.tick()
    li = Person(browser, served)
    li.sign_in("li")
    li.page.goto(served.base + "/board")
    assert li.page.locator("svg rect title").all_text_contents() == [
        "区发改局 红牌 2 件", "区发改局 黄牌 1 件", "区市场监管局 红牌 1 件", "区财政局 绿 1 件"]
    li.shot("board")

    scj = Person(browser, served)
    scj.sign_in("scj")
    response = scj.page.goto(case_url)
    assert response is not None
    assert response.status == 404
    assert "落实作风转变年督查问效工作" not in scj.page.content()

    for person in (wang, fgj, li, scj):
        assert person.foreign() == [], person.foreign()  # no request leaves duban's origin


def test_lockout_in_the_browser(served: Served, browser: Any) -> None:
    someone = Person(browser, served)
    for _ in range(5):
        someone.sign_in("fgj", "Not-the-password-1")
    assert "锁定" in someone.page.inner_text("main")
    someone.sign_in("fgj")
    assert "锁定" in someone.page.inner_text("main")
    assert someone.page.url.startswith(served.base + "/login")
    assert someone.context.cookies() == [] or all(c["name"] != "duban_session" for c in someone.context.cookies())
