"""报表 and 审计 over HTTP (SPEC §10, §13, §15): pages, CSV/XLSX downloads, the audit export
zip on the board and the API, and who may have them."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.conftest import row_counts
from tests.web.conftest import Office

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _late_case(office: Office) -> None:
    """A second case, signed for and left to run past its deadline, so the reports have rows."""
    app = office.app
    c = app.open_case("supervision", title="整改扬尘问题", lead_unit="区财政局", co_units=[], due="2wd",
                      values={}, actor="wang")
    app.fire(c["id"], "accept", actor="czj")


def test_reports_page_draws_each_report_with_its_period_picker(office: Office) -> None:
    _late_case(office)
    c = office.signed_in("wang")
    units = c.get("/reports?name=units&since=2027-03-01&until=2027-03-31")
    assert units.status_code == 200
    assert "各单位" in units.text and "区发改局" in units.text and "区财政局" in units.text
    assert 'name="since" type="date" value="2027-03-01"' in units.text
    assert "/reports/units.csv?since=2027-03-01&amp;until=2027-03-31" in units.text
    bulletin = c.get("/reports?name=bulletin&period=week&date=2027-03-01")
    assert bulletin.status_code == 200 and "通报" in bulletin.text and "<option value=\"week\" selected>" in bulletin.text
    brief = c.get(f"/reports?name=accountability&case={office.case_id}")
    assert brief.status_code == 200 and "报送一季度重点工作进展" in brief.text
    # the header links to both pages for the office
    assert 'href="/reports"' in units.text and 'href="/audit"' in units.text


def test_a_bad_period_is_shown_on_the_page_and_refused_on_the_download(office: Office) -> None:
    c = office.signed_in("wang")
    before = row_counts(office.url)
    page = c.get("/reports?name=units&since=yesterday")
    assert page.status_code == 422 and "yesterday" in page.text and 'role="alert"' in page.text
    assert c.get("/reports/bulletin.csv?period=fortnight").status_code == 422
    assert c.get("/reports/nope.csv").status_code == 404
    assert row_counts(office.url) == before


def test_report_downloads_are_csv_with_bom_and_real_xlsx(office: Office) -> None:
    _late_case(office)
    c = office.signed_in("li")  # a leader reads reports
    csv = c.get("/reports/units.csv?since=2027-03-01")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.content.startswith("\ufeff".encode()) and "区财政局" in csv.text
    assert "attachment" in csv.headers["content-disposition"]
    xlsx = c.get("/reports/bulletin.xlsx?period=quarter&date=2027-03-01")
    assert xlsx.status_code == 200 and xlsx.headers["content-type"] == XLSX
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames and any(ws.max_row >= 1 for ws in book.worksheets)


def test_ledger_downloads_as_xlsx_with_the_filters_applied(office: Office) -> None:
    _late_case(office)
    c = office.signed_in("wang")
    assert 'href="/cases.xlsx?' in c.get("/cases").text
    r = c.get("/cases.xlsx", params={"q": "扬尘"})
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:4] == ("编号", "流程", "状态", "标题")
    assert [r[3] for r in rows[1:]] == ["整改扬尘问题"]  # the filter held: not the 区发改局 case


def test_a_unit_user_sees_only_its_own_cases_in_the_xlsx(office: Office) -> None:
    _late_case(office)
    ws = load_workbook(io.BytesIO(office.signed_in("fgj").get("/cases.xlsx").content)).active
    assert ws is not None
    assert [r[3] for r in list(ws.iter_rows(values_only=True))[1:]] == ["报送一季度重点工作进展"]


def test_audit_page_shows_the_chain_and_the_latest_checkpoint(office: Office, tmp_path: Path) -> None:
    c = office.signed_in("zhao")  # an inspector reads the audit page
    page = c.get("/audit")
    assert page.status_code == 200
    assert "尚未签署检查点" in page.text and 'href="/audit?verify=1"' in page.text
    assert "审计链完整" not in page.text  # the whole chain is recomputed only when asked
    count, head, _ = office.app.verify(1)
    assert f"共 {count} 条事件" in page.text and str(head) in page.text
    assert "审计链完整" in c.get("/audit?verify=1").text
    from duban.service import checkpoints as checkpointing
    from duban.service import keys

    _, _, key = keys.generate(tmp_path / "office.key")
    checkpointing.make(office.app, key)
    signed = checkpointing.stored_summary(office.app)
    assert signed is not None
    page = c.get("/audit")
    assert "检查点 #1" in page.text and signed["root"] in page.text and signed["fingerprint"] in page.text


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "xlsx"])
def test_audit_export_zip_holds_the_export_and_its_manifest(office: Office, fmt: str) -> None:
    r = office.client().get(f"/api/v1/audit/export?format={fmt}&case={office.case_id}", headers=office.token("zhao"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert sorted(z.namelist()) == sorted([f"audit.{fmt}", f"audit.{fmt}.manifest.json"])
    manifest = json.loads(z.read(f"audit.{fmt}.manifest.json"))
    assert manifest["rows"] >= 1 and manifest["filters"]["case_id"] == office.case_id
    if fmt == "jsonl":
        lines = z.read("audit.jsonl").decode().splitlines()
        assert len(lines) == manifest["rows"] and all(json.loads(x)["case_id"] == office.case_id for x in lines)


def test_an_edited_event_shows_on_the_audit_page(office: Office) -> None:
    from sqlalchemy import update

    from duban.storage.tables import AUDIT

    c = office.signed_in("wang")
    with office.app.db.write() as conn:
        conn.execute(update(AUDIT).where(AUDIT.c.seq == 2).values(note="改过"))
    page = c.get("/audit?verify=1")
    assert page.status_code == 200 and "审计链校验失败：第 2 条事件不符" in page.text


def test_audit_export_from_the_board_page(office: Office) -> None:
    c = office.signed_in("wang")
    r = c.get("/audit/export.zip?format=csv")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert "audit.csv" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()


def test_unit_users_and_leaders_get_no_audit_export(office: Office) -> None:
    unit = office.signed_in("fgj")
    before = row_counts(office.url)
    api = office.client()
    for name in ("fgj", "li"):
        r = api.get("/api/v1/audit/export", headers=office.token(name))
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert unit.get("/audit").status_code == 403
    assert unit.get("/audit/export.zip").status_code == 403
    assert unit.get("/reports").status_code == 403
    assert unit.get("/reports/units.csv").status_code == 403
    assert 'href="/audit"' not in unit.get("/").text and 'href="/reports"' not in unit.get("/").text
    assert row_counts(office.url) == before


def test_audit_export_bad_filters_are_422_and_change_nothing(office: Office) -> None:
    api = office.client()
    before = row_counts(office.url)
    for query, field in (("format=pdf", "format"), ("unit=不存在的局", "unit"), ("case=abc", "case"),
                         ("since=soon", "since")):
        r = api.get(f"/api/v1/audit/export?{query}", headers=office.token("wang"))
        assert r.status_code == 422, (query, r.text)
        assert r.json()["error"] == "invalid"
        assert field in r.json()["message"] or r.json().get("field") == field, r.json()
    assert row_counts(office.url) == before


def test_bulletin_and_accountability_as_json(office: Office) -> None:
    api = office.client()
    b = api.get("/api/v1/reports/bulletin?period=week&date=2027-03-01", headers=office.token("li"))
    assert b.status_code == 200 and b.json()["report"] == "bulletin"
    a = api.get(f"/api/v1/reports/accountability?case={office.case_id}", headers=office.token("zhao"))
    assert a.status_code == 200 and a.json()["report"] == "accountability"
    assert api.get("/api/v1/reports/accountability?case=99999", headers=office.token("wang")).status_code == 404
    assert api.get("/api/v1/reports/bulletin", headers=office.token("czj")).status_code == 403
