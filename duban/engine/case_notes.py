"""Case operations every workflow has that move no state (SPEC §13): 领导批示, 催办, 关注.

`instruct` (leader) puts a note on the timeline and sends the lead unit a 领导批示 notice;
`urge` (office) sends the lead unit a 催办通知 now, in any open state; `watch` / `unwatch`
(office) put the case on or off the user's 关注 list. Each is one audit event with the
trigger's name, so the case's history (and its replay) holds it. None changes the case's
state, deadlines or fields: these are not "the case's next step", so they are not listed
among its allowed triggers and never put a case on anyone's to-do list.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from duban.engine.model import Case, Event, Notice, Outcome
from duban.engine.wording import takes
from duban.errors import FieldRef, GuardRejectedError, PermissionDeniedError, RefusedError, UsageError

if TYPE_CHECKING:
    from duban.engine.actors import Actor

LABELS = {"instruct": "领导批示", "urge": "催办", "watch": "关注", "unwatch": "取消关注"}
ROLES = {"instruct": ("leader",), "urge": ("office",), "watch": ("office",), "unwatch": ("office",)}
ACTIONS = {"instruct": "instructed", "urge": "urged", "watch": "watched", "unwatch": "unwatched"}
NOTICE_KINDS = {"instruct": "领导批示", "urge": "催办通知"}
CASE_NOTES = tuple(LABELS)
NOTE_LIMIT = 2000  # a 批示 is a paragraph, not a document (attach one instead)


def run_case_note(case: Case, op: str, actor: Actor, note: str, values: dict[str, str], now: datetime) -> Outcome:
    """Check role and preconditions, then write the operation's event (and notice)."""
    assert case.id is not None
    if actor.role not in ROLES[op]:
        raise PermissionDeniedError(
            f"user '{actor.name}' ({actor.role}) may not {op}（{LABELS[op]}）; allowed roles: {', '.join(ROLES[op])}")
    if values:
        raise UsageError(FieldRef(f"data.{next(iter(values))}"), f"=…: '{op}' takes ", *takes(()))
    if op in NOTICE_KINDS and case.closed_at is not None:
        raise RefusedError(f"case {case.id} is closed ({case.state}): {LABELS[op]} is only for open cases")
    if op == "instruct" and not note.strip():
        raise GuardRejectedError("note_required", "'instruct' needs the instruction's text (", FieldRef("note"), " TEXT)")
    if len(note) > NOTE_LIMIT:
        raise UsageError(FieldRef("note"), f": at most {NOTE_LIMIT} characters (this one has {len(note)})")
    out = Outcome(case)
    out.events.append(Event(ACTIONS[op], actor.name, actor.role, now, trigger=op, from_state=case.state,
                            to_state=case.state, note=note.strip(), data={}))
    if op in NOTICE_KINDS:
        kind = NOTICE_KINDS[op]
        out.notices.append(Notice(kind, case.lead_unit, None, f"{kind}：{case.title}", now))
    if op in ("watch", "unwatch"):
        out.watch = op == "watch"
    return out
