"""One transition of a workflow's machine, as a person's trigger or a rung's takes it.

The machine checks the guards (every one that fails is named in the refusal) and moves the
case's state; the transition then records its values, may hand the case to another lead
unit (改派), raise the escalation level, and its deadlines follow the new state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from duban.engine.actors import Actor
from duban.engine.guards import Attempt
from duban.engine.model import Case, Event, Outcome
from duban.engine.tracking import Deadlines
from duban.engine.wording import joined
from duban.engine.workflow import Workflow
from duban.errors import GuardRejectedError


def transition(
    deadlines: Deadlines, wf: Workflow, case: Case, trigger: str, actor: Actor, note: str,
    values: dict[str, str], now: datetime, logical: datetime, event_data: dict[str, Any],
) -> Outcome:
    """Take `trigger` from the case's state; `logical` is the instant its deadlines start
    from (a rung's due instant when a late sweep fires it, else `now`)."""
    from_state = case.state
    attempt = Attempt(case=case, trigger=trigger, actor=actor.name, role=actor.role, note=note, values=values)
    if not wf.machine.events[trigger].trigger(case, attempt=attempt):
        guard, _ = attempt.failures[0]
        raise GuardRejectedError(guard, *joined(dict.fromkeys(m for _, m in attempt.failures)))
    assert attempt.taken is not None
    taken = wf.spec.transitions[attempt.taken]
    out = Outcome(case)
    if taken.reassigns and values.get("unit", "").strip() and values["unit"].strip() != case.lead_unit:
        new_lead = values["unit"].strip()
        case.data.setdefault("previous_units", []).append(case.lead_unit)
        case.co_units = [u for u in case.co_units if u != new_lead]
        case.lead_unit, out.units_changed = new_lead, True
    case.data.update(values)
    case.data.update(taken.record)
    if taken.escalate_to:
        case.escalation_level = max(case.escalation_level, taken.escalate_to)
    out.events.append(
        Event("fire", actor.name, actor.role, now, trigger=trigger, from_state=from_state,
              to_state=case.state, note=note, data=dict(event_data))
    )
    deadlines.sync(wf, case, logical, out, trigger=trigger, values=values)
    return out
