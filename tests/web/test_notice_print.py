"""The printed notice on the board (SPEC §14): the case page links each notice's PDF, the PDF
holds the case and the office number, and a unit that may not see the case gets 404 for it."""

from __future__ import annotations

import io
import re

from pypdf import PdfReader

from tests.web.conftest import Office


def test_case_page_offers_each_notice_as_a_pdf(office: Office) -> None:
    office.clock.advance(days=30)  # far past every deadline: the ladder has written its notices
    office.app.tick()
    c = office.signed_in("wang")
    page = c.get(f"/cases/{office.case_id}").text
    links = re.findall(rf'href="(/cases/{office.case_id}/notices/\d+\.pdf)"', page)
    assert links, "the case page links no notice PDF"
    r = c.get(links[0])
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
    assert "报送一季度重点工作进展" in text
    assert re.search(r"〔\d{4}〕\d+号", text)
    assert c.get(links[0]).content == r.content  # the number is kept: a reprint is the same document


def test_another_units_liaison_gets_404_for_the_notice(office: Office) -> None:
    office.clock.advance(days=30)
    office.app.tick()
    notice = office.app.notices(case_id=office.case_id)[0]["id"]
    r = office.signed_in("scj").get(f"/cases/{office.case_id}/notices/{notice}.pdf")
    assert r.status_code == 404
    assert office.signed_in("wang").get(f"/cases/{office.case_id}/notices/99999.pdf").status_code == 404
