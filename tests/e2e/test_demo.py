"""`duban demo` in an empty folder: a sample office year that escalates by itself (SPEC §8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from duban.cli import cli
from tests.conftest import Duban, row_counts

CLEAN_ENV = {"DUBAN_DB": None, "DUBAN_NOW": None, "DUBAN_ACTOR": None, "DUBAN_TZ": None}


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """An empty folder where `duban demo` ran once, with no --db (the default ./duban.db)."""
    folder = tmp_path_factory.mktemp("empty")
    assert list(folder.iterdir()) == []
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        result = CliRunner().invoke(cli, ["demo"], env=CLEAN_ENV, catch_exceptions=False)
    return folder, result


def in_folder(folder: Path) -> Duban:
    return Duban(f"sqlite:///{folder / 'duban.db'}")


class TestDemo:
    def test_runs_in_an_empty_folder(self, demo_folder: tuple[Path, Any]) -> None:
        """The demo exits 0, creates ./duban.db and reports a verified audit chain."""
        folder, result = demo_folder
        assert result.exit_code == 0, result.stderr
        assert (folder / "duban.db").is_file()
        assert "校验通过" in result.stdout

    def test_chain_verifies_afterwards(self, demo_folder: tuple[Path, Any]) -> None:
        """`duban audit verify` on the demo database exits 0."""
        folder, _ = demo_folder
        run = in_folder(folder).ok("audit", "verify", "--json")
        assert run.json["ok"] is True and run.json["events"] > 0

    def test_escalations_happened_by_themselves(self, demo_folder: tuple[Path, Any]) -> None:
        """Some case ends overdue and one in accountability; the scheduler left notices and system events."""
        folder, _ = demo_folder
        duban = in_folder(folder)
        cases = duban.ok("case", "list", "--json").json
        states = {c["state"] for c in cases}
        assert "overdue" in states and "accountability" in states
        assert any(c["escalation_level"] >= 4 for c in cases)
        assert duban.ok("notice", "list", "--json").json
        escalated = [e for c in cases for e in duban.ok("case", "history", str(c["id"]), "--json").json
                     if e["actor"] == "system"]
        assert escalated

    def test_json_report(self, tmp_path: Path) -> None:
        """`duban demo --json` prints one JSON summary with the chain status."""
        result = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'd.db'}", "demo", "--json"], env=CLEAN_ENV,
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["chain_ok"] is True
        assert any(c["state"] == "accountability" for c in report["cases"])

    def test_refuses_a_folder_that_already_has_a_database(self, demo_folder: tuple[Path, Any]) -> None:
        """Running the demo again over an existing database is refused and changes nothing."""
        folder, _ = demo_folder
        url = f"sqlite:///{folder / 'duban.db'}"
        before = row_counts(url)
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(folder)
            result = CliRunner().invoke(cli, ["demo"], env=CLEAN_ENV, catch_exceptions=False)
        assert result.exit_code == 4
        assert "already exists" in result.stderr
        assert row_counts(url) == before
