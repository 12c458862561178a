"""CSV and JSONL exports written by worker processes (`duban.exports.parallel_export`), on SQLite
and PostgreSQL: the same bytes and the same manifest as the sequential export, for the
whole chain and filtered; exports that must stay sequential do; a failing worker leaves
nothing behind; and `duban audit export --jobs N` end to end.

The chains here are small, so the tests lower the threshold and the range size to make the
ranges a few events long (the real workers still run, one process per job)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from duban.clock import ManualClock
from duban.exports import parallel_export
from duban.exports.events import AuditFilter
from duban.reports.period import Period
from duban.service.app import App
from duban.service.reviews import Reviews
from duban.storage.database import Database
from tests.conftest import Duban
from tests.integration.test_audit_reader import T0, awkward_events, store
from tests.integration.test_parallel_verify import BIG, big_chain

TZ = ZoneInfo("Asia/Shanghai")


def both(app: App, folder: Path, fmt: str, filters: AuditFilter, jobs: int) -> tuple[Any, Any]:
    """(bytes, manifest without its file name) of the sequential export and of the one in workers."""
    out = []
    for name, kw in (("one", {"jobs": 1}), ("workers", {"jobs": jobs, "parallel_from": 1})):
        path = folder / f"{name}.{fmt}"
        manifest = Reviews(app).export_audit(path, fmt, filters, **kw).to_json()
        manifest.pop("file")
        out.append((path.read_bytes(), manifest))
    return out[0], out[1]


@pytest.fixture
def chain_app(any_db_url: str, tmp_path: Path) -> Any:
    db = Database(any_db_url)
    db.migrate()
    store(db, awkward_events(40))
    yield App(db, ManualClock(datetime(2026, 11, 2, 9, tzinfo=TZ)), TZ)
    db.dispose()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("jobs", [2, 3])
def test_workers_write_the_sequential_bytes(chain_app: App, tmp_path: Path, fmt: str, jobs: int) -> None:
    """Awkward values (quotes, line breaks, None fields, nested data) and a period filter: the
    export in workers is the sequential one, byte for byte, with the same manifest."""
    for filters in (AuditFilter(), AuditFilter(period=Period(T0 + timedelta(days=100), T0 + timedelta(days=300)))):
        sequential, parallel = both(chain_app, tmp_path, fmt, filters, jobs)
        assert parallel == sequential
        assert sequential[1]["rows"] > 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no part or temporary file left


def test_case_and_workflow_filters_and_what_stays_sequential(any_db_url: str, tmp_path: Path) -> None:
    """Cases opened and moved through the API: exports by case and by workflow come out of the
    workers as they come out of one process; a unit filter and XLSX are never split."""
    clock = ManualClock(datetime(2026, 3, 2, 9, tzinfo=TZ))
    app = App(Database(any_db_url), clock, TZ)
    app.init()
    app.add_user("wang", "office", None)
    app.add_user("fgj", "unit", "区发改局")
    ids = [app.open_case("supervision", title=f"任务{i}", lead_unit="区发改局", co_units=[], due="5wd", values={},
                         actor="wang")["id"] for i in range(6)]
    for case_id in ids[::2]:
        clock.advance(hours=1)
        app.fire(case_id, "accept", actor="fgj", note="收到，\"立即\"办理")
    for filters in (AuditFilter(case_id=ids[2]), AuditFilter(workflow="supervision")):
        sequential, parallel = both(app, tmp_path, "jsonl", filters, 2)
        assert parallel == sequential and sequential[1]["rows"] >= 2
    with app.db.read() as conn:
        assert parallel_export.plan(conn, AuditFilter(unit="区发改局"), "csv", 2, parallel_from=1, min_range=1) is None
        assert parallel_export.plan(conn, AuditFilter(), "xlsx", 2, parallel_from=1, min_range=1) is None
        assert parallel_export.plan(conn, AuditFilter(), "csv", 1, parallel_from=1, min_range=1) is None
        assert parallel_export.plan(conn, AuditFilter(), "csv", 2, parallel_from=1, min_range=1) is not None
    app.db.dispose()


def failing_part(url: str, filters: AuditFilter, fmt: str, tz: Any, low: int | None, high: int, file: str,
                 labels: Any = None) -> Any:
    Path(file).write_bytes(b"half a range")
    raise RuntimeError("worker failed")


def test_a_failing_worker_leaves_nothing(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that fails fails the export: no file, no manifest, no part file is left in the folder."""
    db = Database(sqlite_url)
    db.migrate()
    store(db, awkward_events(40))
    app = App(db, ManualClock(datetime(2026, 11, 2, 9, tzinfo=TZ)), TZ)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(parallel_export, "write_part", failing_part)  # forked workers inherit it
    with pytest.raises(RuntimeError, match="worker failed"):
        Reviews(app).export_audit(out / "audit.csv", "csv", AuditFilter(), jobs=2, parallel_from=1)
    assert list(out.iterdir()) == []
    db.dispose()


def test_cli_export_with_jobs(sqlite_url: str, tmp_path: Path) -> None:
    """`audit export --jobs 2` over a chain long enough for workers: the file `--jobs 1` writes, and it
    verifies offline against its manifest."""
    db = Database(sqlite_url)
    db.migrate()
    for rows in big_chain(BIG):
        store(db, rows)
    db.dispose()
    duban = Duban(sqlite_url)
    for fmt in ("jsonl", "csv"):
        one, two = tmp_path / f"one.{fmt}", tmp_path / f"two.{fmt}"
        first = duban.ok("audit", "export", "--format", fmt, "--out", str(one), "--jobs", "1", "--json").json
        second = duban.ok("audit", "export", "--format", fmt, "--out", str(two), "--jobs", "2", "--json").json
        assert one.read_bytes() == two.read_bytes()
        assert (second["rows"], second["sha256"], second["last_hash"]) == (BIG, first["sha256"], first["last_hash"])
    checked = duban.ok("audit", "verify", "--file", str(tmp_path / "two.jsonl"), "--json").json
    assert json.dumps(checked, ensure_ascii=False).count(str(BIG)) >= 1 and checked["ok"] is True
    assert duban("audit", "export", "--format", "csv", "--out", str(tmp_path / "x.csv"), "--jobs", "0").code == 2
