"""Operational logs (structlog, on stderr): a step's line shows at INFO and stays away at the
default WARNING, and `--json` output on stdout stays one clean document either way."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Duban

OPENED = "2026-03-02T09:00"


def open_and_accept(duban: Duban, level: str | None) -> tuple[str, str]:
    env = {"DUBAN_LOG_LEVEL": level} if level else {}
    opened = duban.ok("case", "open", "supervision", "--title", "台帐", "--unit", "区发改局", "--due", "5wd", "--json",
                      now=OPENED, actor="wang", env=env).json
    run = duban.ok("case", "fire", str(opened["id"]), "accept", "--json", now="2026-03-02T10:00", actor="fgj", env=env)
    assert json.loads(run.stdout)["state"] == "in_progress"
    return run.stdout, run.stderr


@pytest.mark.parametrize("level", ["INFO", "info"])
def test_info_level_logs_each_step(duban: Duban, level: str) -> None:
    _, stderr = open_and_accept(duban, level)
    lines = [json.loads(line) for line in stderr.splitlines()]  # not a terminal: JSON lines
    steps = [line for line in lines if line["event"] == "case.transitioned"]
    assert [(s["level"], s["trigger"], s["actor"], s["state"]) for s in steps] == [("info", "accept", "fgj", "in_progress")]


def test_default_level_keeps_step_lines_out(duban: Duban) -> None:
    _, stderr = open_and_accept(duban, None)
    assert "case.transitioned" not in stderr
