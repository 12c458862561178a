"""`duban audit export` and `duban audit verify [--file]` as a reviewer uses them (SPEC §7):
each format read back with csv, json and openpyxl and compared with the database, the
filters, the manifest, the offline check of what a reviewer was given, and bad input
leaving no file behind."""

from __future__ import annotations

import csv
import json
import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, update

from duban.engine.audit import GENESIS, format_instant, verify_chain
from duban.storage import audit_log
from duban.storage.database import Database
from duban.storage.tables import AUDIT
from tests.conftest import Duban

TZ = ZoneInfo("Asia/Shanghai")
HEADERS = ["序号", "案件编号", "标题", "牵头单位", "时间", "操作人", "角色", "角色代码", "动作", "动作代码", "操作", "操作代码",
           "原状态", "原状态代码", "新状态", "新状态代码", "说明", "数据", "前一哈希", "哈希"]
COL = {h: i for i, h in enumerate(HEADERS)}


def build_history(duban: Duban) -> None:
    """Three cases: one done on time, one never signed (escalated, held accountable), one rectification."""
    duban.ok("case", "open", "supervision", "--title", "建立未落实政策问题台帐", "--unit", "区发改局", "--co-unit", "区财政局",
             "--due", "15wd", now="2026-03-02T09:00", actor="wang")
    duban.ok("case", "open", "supervision", "--title", "推进“六证合一”改革", "--unit", "区市场监管局", "--due", "2026-03-13",
             now="2026-03-02T09:30", actor="wang")
    duban.ok("case", "fire", "1", "accept", now="2026-03-02T10:00", actor="fgj")
    duban.ok("case", "fire", "1", "report", "--note", "已建立台帐，共梳理问题12项", now="2026-03-10T16:00", actor="fgj")
    duban.ok("case", "fire", "1", "verify", now="2026-03-11T09:00", actor="wang")
    duban.ok("tick", now="2026-03-20T09:00")
    duban.ok("case", "fire", "2", "hold_accountable", "--set", "measure=通报批评", "--note", "长期未签收",
             now="2026-03-20T10:00", actor="li")
    duban.ok("case", "open", "rectification", "--title", "窗口服务整改", "--unit", "区财政局", "--due", "2026-04-30",
             now="2026-04-01T09:00", actor="wang")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The history built once per module; each test gets its own copy of the database."""
    folder = tmp_path_factory.mktemp("history")
    d = Duban(f"sqlite:///{folder / 'duban.db'}")
    d.ok("init")
    for name, role, unit in (("wang", "office", ""), ("li", "leader", ""), ("fgj", "unit", "区发改局")):
        d.ok("user", "add", name, "--role", role, *(["--unit", unit] if unit else []))
    for unit in ("区财政局", "区市场监管局"):  # units the history's cases name, with no user yet
        d.ok("unit", "add", unit)
    build_history(d)
    return folder


@pytest.fixture
def history(template: Path, tmp_path: Path) -> Duban:
    for f in template.glob("duban.db*"):
        shutil.copy(f, tmp_path / f.name)
    return Duban(f"sqlite:///{tmp_path / 'duban.db'}")


def db_events(url: str, case_ids: set[int] | None = None) -> list[dict[str, Any]]:
    """The audit events as the database holds them."""
    db = Database(url)
    try:
        with db.read() as conn:
            return [e for e in audit_log.iterate(conn) if case_ids is None or e["case_id"] in case_ids]
    finally:
        db.dispose()


def export(duban: Duban, fmt: str, path: Path, *filters: str) -> dict[str, Any]:
    return dict(duban.ok("audit", "export", "--format", fmt, "--out", str(path), *filters, "--json", now="2026-05-01T09:00").json)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class TestFormats:
    def test_jsonl_holds_every_event_exactly_and_reverifies(self, history: Duban, tmp_path: Path) -> None:
        """Each line is one stored event with every hashed field; `at` in the chain's UTC form."""
        path = tmp_path / "audit.jsonl"
        export(history, "jsonl", path)
        got, stored = read_jsonl(path), db_events(history.db_url)
        assert len(got) == len(stored) > 10
        assert got == [{**e, "at": format_instant(e["at"])} for e in stored]
        count, head, broken = verify_chain(got)
        assert (count, head, broken) == (len(stored), stored[-1]["hash"], None)

    def test_csv_opens_in_excel_with_chinese_headers(self, history: Duban, tmp_path: Path) -> None:
        """UTF-8 with a BOM, Chinese headers, one row per event, instants in Beijing time."""
        path = tmp_path / "audit.csv"
        export(history, "csv", path)
        raw = path.read_bytes()
        assert raw.startswith("\ufeff".encode())
        rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
        stored = db_events(history.db_url)
        assert rows[0] == HEADERS
        assert len(rows) - 1 == len(stored)
        for row, e in zip(rows[1:], stored, strict=True):
            assert int(row[0]) == e["seq"]
            assert datetime.fromisoformat(row[COL["时间"]]) == e["at"]
            assert row[COL["时间"]].endswith("+08:00")
            assert (row[COL["操作人"]], row[COL["说明"]], row[COL["哈希"]]) == (e["actor"], e["note"], e["hash"])
            assert (row[COL["角色代码"]], row[COL["动作代码"]]) == (e["role"], e["action"])
            assert json.loads(row[COL["数据"]]) == e["data"]
        assert any("已建立台帐" in row[COL["说明"]] for row in rows)

    def test_xlsx_has_headers_frozen_row_fitted_widths_and_real_dates(self, history: Duban, tmp_path: Path) -> None:
        """Opened in Excel: Chinese headers, the header row frozen, columns wide enough, dates as dates."""
        from openpyxl import load_workbook

        path = tmp_path / "audit.xlsx"
        export(history, "xlsx", path)
        ws = load_workbook(path)["审计日志"]
        stored = db_events(history.db_url)
        rows = list(ws.iter_rows(values_only=True))
        assert list(rows[0]) == HEADERS
        assert ws.freeze_panes == "A2"
        assert len(rows) - 1 == len(stored)
        at = COL["时间"]
        for row, e in zip(rows[1:], stored, strict=True):
            assert row[0] == e["seq"]
            assert isinstance(row[at], datetime)
            assert abs((row[at] - e["at"].astimezone(TZ).replace(tzinfo=None)).total_seconds()) < 0.001
            assert (row[COL["操作人"]], row[COL["哈希"]]) == (e["actor"], e["hash"])
        assert ws.cell(row=2, column=at + 1).number_format == "yyyy-mm-dd hh:mm:ss"
        assert ws.column_dimensions["T"].width >= 64  # a whole hash fits
        assert ws.column_dimensions["E"].width >= 19  # a whole date and time fits

    def test_xlsx_keeps_a_note_that_looks_like_a_formula_as_text(self, history: Duban, tmp_path: Path) -> None:
        """A note beginning with '=' is shown as written, never run by Excel as a formula."""
        from openpyxl import load_workbook

        history.ok("user", "add", "czj", "--role", "unit", "--unit", "区财政局")
        history.ok("case", "fire", "3", "submit_plan", "--note", "=HYPERLINK(\"http://x\") 见附件", now="2026-04-02T09:00",
                   actor="czj")
        path = tmp_path / "audit.xlsx"
        export(history, "xlsx", path, "--case", "3")
        ws = load_workbook(path)["审计日志"]
        note = ws.cell(row=ws.max_row, column=COL["说明"] + 1)
        assert (note.value, note.data_type) == ('\'=HYPERLINK("http://x") 见附件', "s")

    def test_manifest_beside_the_file(self, history: Duban, tmp_path: Path) -> None:
        """The manifest records the filters, count, both ends of the chain and the file's SHA-256."""
        import hashlib

        path = tmp_path / "audit.jsonl"
        printed = export(history, "jsonl", path)
        manifest = json.loads((tmp_path / "audit.jsonl.manifest.json").read_text(encoding="utf-8"))
        stored = db_events(history.db_url)
        assert manifest["rows"] == len(stored)
        assert (manifest["first_seq"], manifest["last_seq"]) == (1, stored[-1]["seq"])
        assert (manifest["first_prev_hash"], manifest["last_hash"]) == (GENESIS, stored[-1]["hash"])
        assert manifest["chain_head"] == {"seq": stored[-1]["seq"], "hash": stored[-1]["hash"]}
        assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert manifest["whole_chain"] is True
        assert manifest["filters"] == {"case_id": None, "unit": None, "workflow": None, "since": None, "until": None}
        assert printed["rows"] == manifest["rows"] and printed["manifest_file"].endswith("audit.jsonl.manifest.json")

    def test_exported_files_are_readable_by_others(self, history: Duban, tmp_path: Path) -> None:
        """The export is created like any new file (umask), not private to its writer."""
        path = tmp_path / "audit.csv"
        old = os.umask(0o022)
        try:
            export(history, "csv", path)
        finally:
            os.umask(old)
        assert path.stat().st_mode & 0o777 == 0o644


class TestFilters:
    def test_by_case(self, history: Duban, tmp_path: Path) -> None:
        """--case 2: only that case's events, which verify as a slice of the chain."""
        path = tmp_path / "case2.jsonl"
        manifest = export(history, "jsonl", path, "--case", "2")
        got = read_jsonl(path)
        assert [e["seq"] for e in got] == [e["seq"] for e in db_events(history.db_url, {2})]
        assert manifest["filters"]["case_id"] == 2 and manifest["whole_chain"] is False
        assert history.ok("audit", "verify", "--file", str(path)).stdout.startswith("ok:")

    def test_by_unit_includes_co_handled_cases(self, history: Duban, tmp_path: Path) -> None:
        """--unit 区财政局: the case it co-handles and the one it leads, nothing else."""
        path = tmp_path / "czj.jsonl"
        export(history, "jsonl", path, "--unit", "区财政局")
        assert {e["case_id"] for e in read_jsonl(path)} == {1, 3}

    def test_by_workflow(self, history: Duban, tmp_path: Path) -> None:
        path = tmp_path / "rect.csv"
        manifest = export(history, "csv", path, "--workflow", "rectification")
        assert manifest["rows"] == len(db_events(history.db_url, {3})) > 0

    def test_by_period_bare_until_includes_the_day(self, history: Duban, tmp_path: Path) -> None:
        """--since 2026-03-11 --until 2026-03-20: from the 11th to the end of the 20th, Beijing time."""
        path = tmp_path / "march.jsonl"
        manifest = export(history, "jsonl", path, "--since", "2026-03-11", "--until", "2026-03-20")
        start, end = datetime(2026, 3, 11, tzinfo=TZ), datetime(2026, 3, 21, tzinfo=TZ)
        expected = [e["seq"] for e in db_events(history.db_url) if start <= e["at"] < end]
        assert [e["seq"] for e in read_jsonl(path)] == expected
        assert any(e["trigger"] == "hold_accountable" for e in read_jsonl(path))  # 03-20 10:00 is inside
        assert manifest["filters"]["since"] == "2026-03-11T00:00:00+08:00"
        assert manifest["filters"]["until"] == "2026-03-21T00:00:00+08:00"

    def test_period_with_no_events(self, history: Duban, tmp_path: Path) -> None:
        """An empty period is an empty export, with a manifest that says so."""
        path = tmp_path / "empty.jsonl"
        manifest = export(history, "jsonl", path, "--since", "2030-01-01")
        assert (manifest["rows"], manifest["first_seq"], path.read_text()) == (0, None, "")
        history.ok("audit", "verify", "--file", str(path))


class TestVerifyFile:
    @pytest.fixture
    def exported(self, history: Duban, tmp_path: Path) -> Path:
        path = tmp_path / "audit.jsonl"
        export(history, "jsonl", path)
        return path

    def test_checks_without_a_database(self, exported: Path, tmp_path: Path) -> None:
        """A reviewer with only the two files: --db points nowhere and the check still runs."""
        nowhere = Duban(f"sqlite:///{tmp_path / 'missing' / 'none.db'}")
        run = nowhere.ok("audit", "verify", "--file", str(exported), "--json")
        assert run.json["ok"] is True and run.json["events"] == len(read_jsonl(exported))
        assert not (tmp_path / "missing").exists()

    def test_tampered_line(self, history: Duban, exported: Path) -> None:
        """An edited note: exit 6, naming the line and the event."""
        text = exported.read_text(encoding="utf-8").splitlines(keepends=True)
        text[3] = text[3].replace('"actor":"', '"actor":"x', 1)
        exported.write_text("".join(text), encoding="utf-8")
        run = history("audit", "verify", "--file", str(exported))
        assert run.code == 6, run.stderr
        assert "line 4, audit event 4" in run.stderr and "does not match its hash" in run.stderr

    def test_dropped_line(self, history: Duban, exported: Path) -> None:
        text = exported.read_text(encoding="utf-8").splitlines(keepends=True)
        exported.write_text("".join(text[:5] + text[6:]), encoding="utf-8")
        run = history("audit", "verify", "--file", str(exported), "--json")
        assert run.code == 6
        assert (run.json["ok"], run.json["first_bad_seq"]) == (False, 7)
        assert "event 6 is missing" in run.stderr

    def test_swapped_pair(self, history: Duban, exported: Path) -> None:
        text = exported.read_text(encoding="utf-8").splitlines(keepends=True)
        text[6], text[7] = text[7], text[6]
        exported.write_text("".join(text), encoding="utf-8")
        run = history("audit", "verify", "--file", str(exported))
        assert run.code == 6
        assert "line 7, audit event 8" in run.stderr

    def test_manifest_that_does_not_match(self, history: Duban, exported: Path) -> None:
        where = exported.with_name(exported.name + ".manifest.json")
        manifest = json.loads(where.read_text(encoding="utf-8"))
        where.write_text(json.dumps({**manifest, "sha256": "0" * 64}), encoding="utf-8")
        run = history("audit", "verify", "--file", str(exported))
        assert run.code == 6
        assert "manifest mismatch" in run.stderr and "SHA-256" in run.stderr

    def test_missing_manifest_is_not_found(self, history: Duban, exported: Path) -> None:
        exported.with_name(exported.name + ".manifest.json").unlink()
        run = history("audit", "verify", "--file", str(exported))
        assert run.code == 3
        assert "manifest" in run.stderr and "missing" in run.stderr

    def test_edited_xlsx_is_found_by_its_sha256(self, history: Duban, tmp_path: Path) -> None:
        path = tmp_path / "audit.xlsx"
        export(history, "xlsx", path)
        history.ok("audit", "verify", "--file", str(path))
        path.write_bytes(path.read_bytes() + b"\0")
        assert history("audit", "verify", "--file", str(path)).code == 6

    def test_database_chain_is_still_verified_without_file(self, history: Duban) -> None:
        """`audit verify` alone checks the database chain and names the first bad event."""
        assert history.ok("audit", "verify").stdout.startswith("ok:")
        engine = create_engine(history.db_url)
        with engine.begin() as conn:
            conn.execute(update(AUDIT).where(AUDIT.c.seq == 3).values(note="改过"))
        engine.dispose()
        run = history("audit", "verify")
        assert run.code == 6
        assert "audit event 3" in run.stderr


class TestBadInput:
    def test_missing_folder(self, history: Duban, tmp_path: Path) -> None:
        run = history("audit", "export", "--format", "csv", "--out", str(tmp_path / "no" / "audit.csv"))
        assert run.code == 2
        assert "does not exist" in run.stderr
        assert not (tmp_path / "no").exists()

    def test_folder_not_writable(self, history: Duban, tmp_path: Path) -> None:
        """A folder nobody may write to (immutable for root): exit 2, nothing written."""
        folder = tmp_path / "locked"
        folder.mkdir()
        with read_only(folder):
            run = history("audit", "export", "--format", "jsonl", "--out", str(folder / "audit.jsonl"))
            assert run.code == 2, run.stderr
            assert "not writable" in run.stderr
            assert files(folder) == []

    def test_since_after_until(self, history: Duban, tmp_path: Path) -> None:
        run = history("audit", "export", "--format", "csv", "--out", str(tmp_path / "a.csv"),
                      "--since", "2026-04-01", "--until", "2026-03-01")
        assert run.code == 2
        assert "--since 2026-04-01 is not before --until 2026-03-01" in run.stderr
        assert not (tmp_path / "a.csv").exists()

    def test_unknown_format(self, history: Duban, tmp_path: Path) -> None:
        run = history("audit", "export", "--format", "pdf", "--out", str(tmp_path / "a.pdf"))
        assert run.code == 2
        assert "'pdf' is not one of" in run.stderr

    @pytest.mark.parametrize(("flag", "value"), [("--case", "99"), ("--unit", "区不存在局"), ("--workflow", "nonesuch")])
    def test_unknown_filter_is_not_found(self, history: Duban, tmp_path: Path, flag: str, value: str) -> None:
        """A typo in a filter is exit 3, not an empty export that looks fine."""
        run = history("audit", "export", "--format", "jsonl", "--out", str(tmp_path / "x.jsonl"), flag, value)
        assert run.code == 3
        assert value in run.stderr
        assert not (tmp_path / "x.jsonl").exists()

    def test_failure_half_way_leaves_no_file(self, history: Duban, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The disk fills up after the first three rows: exit 1 saying so (SPEC §16), and neither file nor manifest remains."""
        import duban.exports.writers
        import duban.storage.audit_reader

        real, written = duban.exports.writers.jsonl_lines, []

        def failing(batch: Any) -> str:
            if written:
                raise OSError(28, "No space left on device")
            written.append(len(batch))
            return real(batch)

        monkeypatch.setattr(duban.storage.audit_reader, "BATCH", 3)  # read three events at a time
        monkeypatch.setattr(duban.exports.writers, "jsonl_lines", failing)
        folder = tmp_path / "out"
        folder.mkdir()
        run = history("audit", "export", "--format", "jsonl", "--out", str(folder / "audit.jsonl"))
        assert run.code == 1 and "disk is full" in run.stderr and "Traceback" not in run.stderr
        assert written == [3]
        assert files(folder) == []

    def test_failed_export_keeps_the_previous_one(self, history: Duban, tmp_path: Path) -> None:
        """A refused export never touches an earlier file of the same name."""
        path = tmp_path / "audit.jsonl"
        export(history, "jsonl", path)
        before = path.read_bytes()
        assert history("audit", "export", "--format", "jsonl", "--out", str(path), "--case", "99").code == 3
        assert path.read_bytes() == before


class TestBothDatabases:
    def test_filtered_export_reverifies_on_sqlite_and_postgresql(self, any_db_url: str, tmp_path: Path) -> None:
        """The streamed read (a server-side cursor on PostgreSQL) gives the same verifiable slice."""
        d = Duban(any_db_url)
        d.ok("init")
        for name, role, unit in (("wang", "office", ""), ("li", "leader", ""), ("fgj", "unit", "区发改局")):
            d.ok("user", "add", name, "--role", role, *(["--unit", unit] if unit else []))
        for unit in ("区财政局", "区市场监管局"):
            d.ok("unit", "add", unit)
        build_history(d)
        path = tmp_path / "fgj.jsonl"
        manifest = export(d, "jsonl", path, "--unit", "区发改局", "--since", "2026-03-02", "--until", "2026-03-31")
        assert [e["case_id"] for e in read_jsonl(path)] == [1] * manifest["rows"]
        assert manifest["rows"] == len(db_events(any_db_url, {1}))
        assert d.ok("audit", "verify", "--file", str(path), "--json").json["ok"] is True


class TestProgress:
    def test_progress_bar_on_a_terminal_only(self, history: Duban, tmp_path: Path) -> None:
        """On a terminal the export shows a progress bar on stderr; piped, stderr stays quiet."""
        args = [sys.executable, "-m", "duban.cli", "--db", history.db_url, "audit", "export", "--format", "csv"]
        on_tty = _stderr_on_a_terminal([*args, "--out", str(tmp_path / "a.csv")])
        assert "导出审计日志" in on_tty and "100%" in on_tty
        piped = subprocess.run([*args, "--out", str(tmp_path / "b.csv")], capture_output=True, text=True, check=True)
        assert piped.stderr == ""
        assert piped.stdout.startswith("wrote ")


def _stderr_on_a_terminal(args: list[str]) -> str:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=terminal, env={**os.environ, "COLUMNS": "120"})
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode("utf-8", "replace")


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make a folder unwritable for the block: chmod for users, the immutable flag for root."""
    root = os.geteuid() == 0
    if not root:
        folder.chmod(0o500)
    elif subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: cannot make a folder unwritable")
    try:
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
        else:
            folder.chmod(0o700)


@pytest.fixture(autouse=True)
def _no_stray_parts(tmp_path: Path) -> Iterator[None]:
    """Whatever a test does, no temporary '.part' file is ever left behind."""
    yield
    assert not list(tmp_path.rglob("*.part"))
