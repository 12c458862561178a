"""Jurisdiction overrides: an office's settings file changes limits without touching shipped files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Duban, row_counts


def settings(tmp_path: Path, body: str, name: str = "settings.yaml") -> dict[str, str]:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return {"DUBAN_SETTINGS": str(path)}


def open_complaint(duban: Duban, env: dict[str, str] | None = None) -> dict:
    run = duban.ok("case", "open", "complaint", "--title", "投诉", "--unit", "区发改局", "--json",
                   now="2026-11-02T09:00", actor="wang", env=env)
    return duban.ok("case", "fire", str(run.json["id"]), "dispatch", "--json", now="2026-11-02T10:00", actor="wang",
                    env=env).json


def reply_due(case: dict) -> str:
    return next(d["due_at"] for d in case["deadlines"] if d["name"] == "reply")


class TestOverrides:
    def test_office_shortens_the_reply_limit_and_open_cases_keep_theirs(self, duban: Duban, tmp_path: Path) -> None:
        """With 3 wd in the settings new complaints get v2001; a complaint opened before stays v2 with 5 wd."""
        before = open_complaint(duban)
        env = settings(tmp_path, "workflows:\n  complaint:\n    deadlines:\n      reply: {rule: 3wd}\n")
        after = open_complaint(duban, env)
        assert (before["workflow_version"], reply_due(before)) == (2, "2026-11-09T23:59:59+08:00")
        assert (after["workflow_version"], reply_due(after)) == (2001, "2026-11-05T23:59:59+08:00")
        # the old case still follows v2 when it moves on under the new settings
        moved = duban.ok("case", "fire", str(before["id"]), "accept", "--json", now="2026-11-03T09:00", actor="fgj", env=env).json
        assert (moved["workflow_version"], reply_due(moved)) == (2, "2026-11-09T23:59:59+08:00")

    def test_changed_settings_become_the_next_version(self, duban: Duban, tmp_path: Path) -> None:
        """Editing the settings again gives v2002 for new cases; the v2001 case keeps 3 wd."""
        first = open_complaint(duban, settings(tmp_path, "workflows:\n  complaint:\n    deadlines:\n      reply: {rule: 3wd}\n", "a.yaml"))
        second = open_complaint(duban, settings(tmp_path, "workflows:\n  complaint:\n    deadlines:\n      reply: {rule: 2wd}\n", "b.yaml"))
        assert first["workflow_version"] == 2001
        assert (second["workflow_version"], reply_due(second)) == (2002, "2026-11-04T23:59:59+08:00")
        assert reply_due(duban.ok("case", "show", str(first["id"]), "--json").json) == "2026-11-05T23:59:59+08:00"

    def test_workflow_show_names_where_each_limit_came_from(self, duban: Duban, tmp_path: Path) -> None:
        """`workflow show` prints the effective rule and that it came from the settings file."""
        env = settings(tmp_path, "workflows:\n  complaint:\n    deadlines:\n      reply: {rule: 3wd}\n")
        shown = duban.ok("workflow", "show", "complaint", "--json", env=env).json
        reply = shown["deadlines"]["reply"]
        assert reply["rule"] == "3wd"
        assert "settings.yaml" in reply["source"]
        assert "shipped: 5wd" in reply["source"]
        assert shown["version"] == 2001

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ("workflows:\n  complain: {}\n", "unknown workflow 'complain'"),
            ("workflows:\n  complaint:\n    deadlines:\n      answer: {rule: 3wd}\n", "no deadline 'answer'"),
            ("workflows:\n  complaint:\n    deadlines:\n      reply: {rule: 3x}\n", "deadline rule '3x'"),
            ("workflows:\n  complaint:\n    ladders:\n      fast: []\n", "no ladder 'fast'"),
            ("workflows:\n  complaint:\n    deadlines:\n      reply: {running_in: [closed]}\n", "cannot be overridden"),
            ("workflows:\n  complaint:\n    ladders:\n      standard:\n        - {at: 0, level: 2, label: x, trigger: close}\n",
             "ladders.standard[0]"),
        ],
    )
    def test_bad_settings_are_refused_and_change_nothing(self, duban: Duban, tmp_path: Path, body: str, message: str) -> None:
        """A settings file naming an unknown workflow, deadline or ladder, or a malformed rule: exit 4, nothing written."""
        env = settings(tmp_path, body)
        before = row_counts(duban.db_url)
        run = duban("case", "open", "complaint", "--title", "t", "--unit", "区发改局", now="2026-11-02T09:00",
                    actor="wang", env=env)
        assert run.code == 4
        assert message in run.stderr
        assert "settings.yaml" in run.stderr
        assert row_counts(duban.db_url) == before
