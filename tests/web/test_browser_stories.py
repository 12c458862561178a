"""More of the board's stories in a real browser (issue 13), with the same Chromium,
server and people as `test_browser.py`: the unit's liaison reports with an attachment that
the office downloads intact, and the scheduler's sweep turns a case 红牌 on the case page
and on the board. The clock is the office's manual one: moving it and running the sweep
(`App.tick`, the scheduler's own claim-and-fire) stands in for waiting."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tests.web.test_browser import Person, Served, browser, served  # noqa: F401  (fixtures)

TITLE = "报送一季度重点工作进展"  # the fixture office's case: 区发改局 leads, sign for it in 1 working day


def test_the_liaison_signs_for_and_reports_with_an_attachment(served: Served, browser: Any,  # noqa: F811
                                                            tmp_path: Path) -> None:
    office = served.office
    fgj = Person(browser, served, phone=True)
    fgj.sign_in("fgj")
    item = fgj.page.locator("li.item", has_text=TITLE)
    assert "签收时限" in item.inner_text() and "剩余 1 个工作日" in item.inner_text()  # on 我的待办, time left
    item.get_by_role("link", name=TITLE).click()
    fgj.act("签收", "已收到")
    assert "已完成：签收" in fgj.page.inner_text("main")

    report = tmp_path / "一季度进展报告.pdf"
    report.write_bytes(b"%PDF-1.4\n" + "一季度重点工作进展：已完成七项。\n".encode() * 200 + bytes(range(256)))
    fgj.page.get_by_label("选择文件（不超过 20 MB）").set_input_files(str(report))
    fgj.page.get_by_role("button", name="上传附件").click()
    fgj.page.wait_for_load_state()
    assert "已完成：上传附件" in fgj.page.inner_text("main")
    fgj.act("报告办理情况", "已报送，见附件")
    assert "已报告" in fgj.page.inner_text("main")

    wang = Person(browser, served)
    wang.sign_in("wang")
    wang.page.goto(f"{served.base}/cases/{office.case_id}")
    main = wang.page.inner_text("main")
    assert "已报告" in main and "已报送，见附件" in main
    link = wang.page.get_by_role("link", name=report.name)
    with wang.page.expect_download() as done:
        link.click()
    saved = tmp_path / "downloaded"
    done.value.save_as(str(saved))
    assert done.value.suggested_filename == report.name
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == hashlib.sha256(report.read_bytes()).hexdigest()
    for person in (fgj, wang):
        assert person.foreign() == [], person.foreign()


def test_the_scheduler_fires_a_red_card_and_the_board_shows_it(served: Served, browser: Any) -> None:  # noqa: F811
    office = served.office
    li = Person(browser, served)
    li.sign_in("li")
    li.page.goto(f"{served.base}/cases/{office.case_id}")
    assert "红牌" not in li.page.locator("div.item-head").inner_text()
    li.page.goto(served.base + "/board")
    assert li.page.locator("svg rect title").all_text_contents() == ["区发改局 绿 1 件"]

    office.clock.advance(days=20)  # past its deadlines (sign for it in 1 working day, finish in 10) and their rungs
    fired = office.app.tick()  # the sweep a scheduler node runs: claims the due timers, fires them
    assert fired.fired_timers > 0

    li.sign_in("li")  # twenty days on, yesterday's session has ended (12 h at most)
    li.page.goto(f"{served.base}/cases/{office.case_id}")
    assert "红牌" in li.page.locator("div.item-head").inner_text()
    li.page.goto(served.base + "/board")
    assert li.page.locator("svg rect title").all_text_contents() == ["区发改局 红牌 1 件"]
    assert li.foreign() == []
