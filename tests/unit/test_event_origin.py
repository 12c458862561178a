"""How an event came (SPEC §12): a `Database` with an `origin` adds it to the data of every
event written through it — a case's, the scheduler's, the directory's — in the one place
events are hashed; the chain still verifies and a replay passes the fields over. A workflow
cannot name a field after them."""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from duban.clock import ManualClock
from duban.errors import DefinitionError
from duban.service.app import App
from duban.storage.database import Database
from duban.workflows import load_file
from tests.unit.test_definitions import BASE, write

TZ = ZoneInfo("Asia/Shanghai")
ORIGIN = {"via": "cli", "os_user": "operator-7"}


def test_every_event_written_through_the_handle_carries_the_origin(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.migrate()
    app = App(db, ManualClock(datetime(2027, 3, 1, 9, 0, tzinfo=TZ)), TZ)
    try:
        app.add_user("wang", "office", None)
        db.origin = dict(ORIGIN)
        app.add_user("fgj", "unit", "区发改局")
        case = app.open_case("supervision", title="台账", lead_unit="区发改局", co_units=[], due="15wd",
                             values={}, actor="wang")
        app.fire(case["id"], "accept", actor="fgj")
        db.origin = None
        app.fire(case["id"], "report", actor="fgj", note="已完成")
        seen = [(e["action"], {k: e["data"].get(k) for k in ORIGIN}) for e in app.events()]
        none = dict.fromkeys(ORIGIN)
        assert seen == [("user_added", {"via": "python", "os_user": seen[0][1]["os_user"]}),
                        ("unit_added", ORIGIN), ("user_added", ORIGIN), ("open", ORIGIN), ("fire", ORIGIN),
                        ("fire", none)]
        assert app.verify()[2] is None
        assert app.replay(case["id"]) == []  # `via` and `os_user` are not values the trigger set
    finally:
        db.dispose()


@pytest.mark.parametrize("key", ["via", "os_user"])
def test_a_workflow_field_cannot_take_an_origin_name(tmp_path: Path, key: str) -> None:
    raw = copy.deepcopy(BASE)
    raw["fields"] = {key: {"label": "来源"}}
    with pytest.raises(DefinitionError, match=f"'{key}' is reserved"):
        load_file(write(tmp_path, raw))


def test_a_trigger_cannot_set_an_origin_name(tmp_path: Path) -> None:
    raw = copy.deepcopy(BASE)
    raw["transitions"][0]["sets"] = ["via"]
    with pytest.raises(DefinitionError, match="'via' is reserved") as caught:
        load_file(write(tmp_path, raw))
    assert caught.value.path == "transitions[0].sets"
