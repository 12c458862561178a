"""A timer whose step the engine refuses (issue 12): what the sweep records, and how the case's
history replays with it — no database (the sweep itself: tests/integration/test_scheduler.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from duban.engine.calendar import WorkingCalendar
from duban.engine.model import Outcome
from duban.engine.replay import TIMER_REFUSED, differences, replay
from duban.engine.service import Actor, Engine
from duban.engine.timers import DueTimer
from duban.engine.workflow import Workflow
from duban.errors import GuardRejectedError
from duban.exports.calendar_files import seed_from_chinesecalendar
from duban.service.timers import refusal
from duban.workflows import SHIPPED_DIR

TZ = ZoneInfo("Asia/Shanghai")
SEED = seed_from_chinesecalendar()
CALENDAR = WorkingCalendar.from_days(((d.day, d.kind) for d in SEED.days), SEED.years)
OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)
LATER = datetime(2026, 4, 1, 9, 0, tzinfo=TZ)


@pytest.fixture(scope="module")
def guarded() -> Workflow:
    """Supervision, but its 超期 step (the red-card rung's `expire`) needs a measure no timer gives."""
    raw = yaml.safe_load((SHIPPED_DIR / "supervision.yaml").read_text(encoding="utf-8"))
    raw["name"] = "guarded"
    [expire] = [t for t in raw["transitions"] if t["trigger"] == "expire"]
    expire["guards"] = ["measure_required"]
    return Workflow.from_raw(raw, "guarded.yaml")


def opened(engine: Engine, wf: Workflow) -> Outcome:
    out = engine.open_case(wf, title="督办事项", lead_unit="区发改局", co_units=[], due="2026-03-20", values={},
                           actor=Actor("wang", "office"), now=OPENED)
    out.case.id = 1  # what storage would give it
    return out


def red_card(out: Outcome) -> DueTimer:
    spec = next(t for t in out.arm if (t.deadline, t.rung) == ("due", 1))
    return DueTimer(7, 1, "due", 1, spec.due_at)


def stored(event: Any, seq: int, case_id: int) -> dict[str, Any]:
    """An engine event as the audit log gives it back."""
    return {"seq": seq, "case_id": case_id, "action": event.action, "actor": event.actor, "role": event.role,
            "at": event.at, "trigger": event.trigger, "from_state": event.from_state, "to_state": event.to_state,
            "note": event.note, "data": event.data}


class TestRefusedTimer:
    def test_the_refusal_is_one_event_and_changes_nothing_else(self, guarded: Workflow) -> None:
        """The engine refuses the red-card rung; `refusal` records it as one `timer_refused` event of the
        system (deadline, rung, the trigger it would fire, the refusal) and no state, timer or notice."""
        engine = Engine(CALENDAR, TZ)
        first = opened(engine, guarded)
        timer = red_card(first)
        with pytest.raises(GuardRejectedError) as refused:
            engine.fire_timer(guarded, first.case, timer, LATER)
        out = refusal(guarded, opened(engine, guarded).case, timer, refused.value, LATER)  # on the case as stored
        [event] = out.events
        assert (event.action, event.actor, event.role, event.trigger) == (TIMER_REFUSED, "system", "system", None)
        assert event.from_state == event.to_state == "assigned"
        assert event.data == {"deadline": "due", "rung": 1, "rung_label": "红牌超期", "trigger": "expire",
                              "timer_due_at": timer.due_at.isoformat(), "refusal": str(refused.value),
                              "error": "GuardRejectedError"}
        assert "红牌超期未能执行" in event.note and "measure" in event.note
        assert (out.arm, out.cancel, out.notices, out.units_changed) == ([], [], [], False)
        assert out.fired == [f"案件 1 办结时限 红牌超期 未能执行：{refused.value}（已记入审计）"]

    def test_a_history_with_a_refusal_replays_to_the_case_and_tells_the_observer(self, guarded: Workflow) -> None:
        """Replaying open + timer_refused gives the case as it was opened, and the observer is told of
        the refusal with an empty outcome (the state check marks that timer done from it)."""
        engine = Engine(CALENDAR, TZ)
        first = opened(engine, guarded)
        case = first.case
        out = refusal(guarded, case, red_card(first), GuardRejectedError("measure_required", "no"), LATER)
        events = [stored(first.events[0], 1, 1), stored(out.events[0], 2, 1)]
        seen: list[tuple[str, Outcome | None]] = []
        replayed = replay(engine, guarded, events, lambda e, step: seen.append((e["action"], step)))
        assert differences(case, replayed) == []
        assert [a for a, _ in seen] == ["open", TIMER_REFUSED]
        step = seen[1][1]
        assert step is not None and (step.events, step.arm, step.cancel) == ([], [], [])
