"""Rebuild a case from its audit events under its pinned definition.

The audit chain is the case's history; replaying it through the same engine must give the
case that storage holds. A difference means a step changed the case without saying so in
the audit log, or a definition changed under an open case — both things a reviewer must
be able to rule out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from duban.engine.audit import ORIGIN_KEYS
from duban.engine.case_notes import CASE_NOTES
from duban.engine.model import Case, Outcome
from duban.engine.service import SHARED_OPERATIONS, Actor, DueTimer, Engine
from duban.engine.workflow import Workflow

# Events that need no step of their own: a recompute is already reflected because the replay
# computes with today's calendar.
# Deliveries (SPEC §14) tell people and an attachment adds a file (checked against its own
# event on download): neither changes the case.
_SKIPPED = ("recompute", "notice_sent", "notice_failed", "attached")
UNIT_RENAMED = "unit_renamed"  # the directory renamed one of the case's units (duban.storage.units)
TIMER_REFUSED = "timer_refused"  # a timer whose step the engine refused (duban.service.timers)


Observer = Callable[[Mapping[str, Any], Outcome | None], None]


def replay(engine: Engine, wf: Workflow, events: Iterable[Mapping[str, Any]], observe: Observer | None = None) -> Case:
    """The case as its events say it is. Raises if an event cannot be replayed.

    ``observe(event, outcome)`` is told each step replayed (the event that starts it and the
    engine's outcome: timers armed and cancelled, notices), and each unit rename (outcome
    None) — what `duban.service.state_check` rebuilds the timer and notice rows from."""
    queue = deque(events)
    first = queue.popleft()
    if first["action"] != "open":
        raise ValueError(f"event {first['seq']}: a case's history starts with 'open', not '{first['action']}'")
    d = first["data"]
    out = engine.open_case(
        wf, title=d["title"], lead_unit=d["lead_unit"], co_units=list(d["co_units"]), due=d["due"],
        values=dict(d["values"]), actor=Actor(first["actor"], first["role"]), now=first["at"],
        milestones=[(m[0], m[1]) for m in d.get("milestones", [])], report=d.get("report"),
    )
    case = out.case
    case.id = first["case_id"]
    if observe is not None:
        observe(first, out)
    while queue:
        e = queue.popleft()
        if e["action"] in _SKIPPED:
            continue
        if e["action"] == UNIT_RENAMED:
            case.rename_unit(e["data"]["old"], e["data"]["new"])
            if observe is not None:
                observe(e, None)
            continue
        if e["action"] == TIMER_REFUSED:  # the engine refused the timer's step: the case stayed as it was
            if observe is not None:
                observe(e, Outcome(case))  # the timer is done all the same
            continue
        if e["role"] == "system":
            timer = DueTimer(0, case.id, e["data"]["deadline"], e["data"]["rung"],
                             datetime.fromisoformat(e["data"]["timer_due_at"]))
            step = engine.fire_timer(wf, case, timer, e["at"])
        else:
            # the actor's unit is not in the event; the lead unit passes the unit check, which
            # the original step already passed
            actor = Actor(e["actor"], e["role"], case.lead_unit)
            values = {k: str(v) for k, v in e["data"].items() if k not in ORIGIN_KEYS} if e["trigger"] not in (*SHARED_OPERATIONS, *CASE_NOTES) else (
                {"until": e["data"]["until"]} if e["action"] == "extension_requested" else {}
            )
            step = engine.fire(wf, case, e["trigger"], actor=actor, note=e["note"], values=values, now=e["at"])
        if observe is not None:
            observe(e, step)
        for _ in step.events[1:]:  # one step may write several events (escalate + expire)
            queue.popleft()
    return case


def differences(stored: Case, replayed: Case) -> list[str]:
    """What differs between the stored case and the replayed one (the row version aside)."""
    fields = ("state", "escalation_level", "lead_unit", "co_units", "closed_at", "suspended", "due_at", "data")
    diffs = [f"{f}: stored {getattr(stored, f)!r}, replayed {getattr(replayed, f)!r}"
             for f in fields if getattr(stored, f) != getattr(replayed, f)]
    if stored.deadlines_json() != replayed.deadlines_json():
        diffs.append(f"deadlines: stored {stored.deadlines_json()}, replayed {replayed.deadlines_json()}")
    return diffs
