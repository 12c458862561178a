"""`bench load` builds an office duban itself can read and verify (issue 16): the audit
chain it writes passes `audit verify`, its rows read back through the product, and the
events average what was asked for. Small data; no timings (those are `bench reads`')."""

from __future__ import annotations

from pathlib import Path

from bench.common import TZ
from bench.load import NOW, load, verify
from duban.clock import ManualClock
from duban.service.app import App
from duban.storage.database import Database


class TestBenchLoad:
    def test_a_loaded_office_verifies_and_reads_back(self, tmp_path: Path) -> None:
        """300 cases and 3,000 events: the chain verifies, every case shows, the counts are those asked for."""
        url = f"sqlite:///{tmp_path / 'office.db'}"
        stats = load(url, 300, 3000, units=12)
        assert stats["cases"] == 300
        assert abs(stats["events"] - 3000) <= 20  # the last templates chosen overshoot by at most one case's events
        checked = verify(url)
        assert checked["chain_ok"]
        assert checked["verified_events"] > stats["events"]  # the directory's own events come first
        app = App(Database(url), ManualClock(NOW), TZ)
        try:
            shown = app.list_cases()
            assert len(shown) == 300
            assert {c["id"] for c in shown} == set(range(1, 301))
            assert len({c["workflow"] for c in shown}) == 5
            assert all(c["lead_unit"] not in c["co_units"] for c in shown)
            assert app.history(shown[0]["id"])[0]["action"] == "open"
        finally:
            app.db.dispose()
