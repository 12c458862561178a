"""`audit verify --state`: the state tables rebuilt from the audit log and compared (SPEC §15).

The chain and the checkpoints prove the events; the tables a clerk reads (cases, timers,
notices, users) are written beside them and could be edited alone. Here every case is
replayed from its events under its pinned definition (`engine.replay`), and on the way the
timer and notice rows it must have are rebuilt from each step's outcome, as storage wrote
them (`repository.commit_outcome`: cancel the ended deadlines' pending timers, arm the new
ones; a fired timer is the one its system event names). Compared with what is stored:

- the case row (`replay.differences`: state, level, units, dates, deadlines, fields);
- the live timers (pending or claimed), as (deadline, rung, due instant): a timer cancelled
  or deleted in the database, or one added, is found;
- the notices, as (kind, recipient, level, title): a deleted or altered notice is found.

The directory: each `user_added` event of the log (`duban.directory`) says who was added
in which role and unit (a unit rename renames it); the user row must say the same. A user
with no such event (added before the directory was audited) is held to the events it
acted in: each must carry the role the users table gives it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from duban.app import App
    from duban.engine.model import Outcome

LIVE = ("pending", "claimed")


@dataclass
class StateCheck:
    cases: int = 0
    users: int = 0
    problems: list[str] = field(default_factory=list)


class _Rebuilt:
    """The timer and notice rows a case's steps wrote, rebuilt step by step."""

    def __init__(self) -> None:
        self.timers: list[list[Any]] = []  # [deadline, rung, due_at, status]
        self.notices: Counter[tuple[str, str, int | None, str]] = Counter()

    def __call__(self, event: Mapping[str, Any], out: Outcome | None) -> None:
        if out is None:  # a unit rename: notices addressed to the old name now carry the new one
            old, new = event["data"]["old"], event["data"]["new"]
            self.notices = Counter({(k, new if r == old else r, lvl, t): n for (k, r, lvl, t), n in self.notices.items()})
            return
        if event["role"] == "system" and "timer_due_at" in event["data"]:
            due = datetime.fromisoformat(event["data"]["timer_due_at"])
            for t in self.timers:
                if t[3] == "pending" and t[0] == event["data"]["deadline"] and t[1] == event["data"]["rung"] and t[2] == due:
                    t[3] = "fired"
                    break
        for t in self.timers:
            if t[3] == "pending" and t[0] in out.cancel:
                t[3] = "cancelled"
        self.timers.extend([a.deadline, a.rung, a.due_at, "pending"] for a in out.arm)
        self.notices.update((n.kind, n.recipient, n.level, n.title) for n in out.notices)

    def live(self) -> Counter[tuple[str, int, datetime]]:
        return Counter((d, r, due) for d, r, due, status in self.timers if status == "pending")


def check_state(app: App) -> StateCheck:
    from duban.storage.tables import CASES

    found = StateCheck()
    with app.db.read() as conn:
        ids = [r[0] for r in conn.execute(select(CASES.c.id).order_by(CASES.c.id))]
        for case_id in ids:
            found.problems.extend(_check_case(app, conn, case_id))
            found.cases += 1
        users, problems = _check_users(conn)
        found.users = users
        found.problems.extend(problems)
    return found


def _check_case(app: App, conn: Connection, case_id: int) -> list[str]:
    from duban.engine.replay import differences, replay
    from duban.storage import audit_log
    from duban.storage import repository as repo
    from duban.storage.tables import NOTICES, TIMERS

    stored = repo.load_case(conn, case_id)
    assert stored is not None
    events = list(audit_log.iterate(conn, case_id=case_id))
    if not events:
        return [f"case {case_id}: the cases table has it but no audit event names it (the row was added)"]
    rebuilt = _Rebuilt()
    try:
        replayed = replay(app.engine(conn), app.workflow_of(conn, stored), events, rebuilt)
    except Exception as exc:  # an event the definition cannot replay: the log and the rows disagree
        return [f"case {case_id}: its audit events cannot be replayed under its pinned definition ({exc})"]
    problems = [f"case {case_id}: {d}" for d in differences(stored, replayed)]
    rows = list(conn.execute(select(TIMERS.c.id, TIMERS.c.deadline, TIMERS.c.rung, TIMERS.c.due_at, TIMERS.c.status)
                             .where(TIMERS.c.case_id == case_id)))
    live = Counter((r.deadline, r.rung, r.due_at) for r in rows if r.status in LIVE)
    expected = rebuilt.live()
    for (deadline, rung, due), n in (expected - live).items():
        gone = [r.id for r in rows if (r.deadline, r.rung, r.due_at) == (deadline, rung, due)]
        how = f"timer row {', '.join(map(str, gone))} is not pending" if gone else "its row is missing"
        problems.append(f"case {case_id}: timer {deadline}#{rung} due {due.isoformat()} should be pending by its "
                        f"events, but {how} (cancelled or deleted in the database){'' if n == 1 else f' ×{n}'}")
    for (deadline, rung, due), _ in (live - expected).items():
        extra = [r.id for r in rows if (r.deadline, r.rung, r.due_at) == (deadline, rung, due) and r.status in LIVE]
        problems.append(f"case {case_id}: timer row {', '.join(map(str, extra))} ({deadline}#{rung} due {due.isoformat()}) "
                        "is pending but no event armed it (added or re-opened in the database)")
    notices = Counter((r.kind, r.recipient, r.level, r.title) for r in conn.execute(
        select(NOTICES.c.kind, NOTICES.c.recipient, NOTICES.c.level, NOTICES.c.title).where(NOTICES.c.case_id == case_id)))
    for (kind, recipient, _, title), n in (rebuilt.notices - notices).items():
        problems.append(f"case {case_id}: notice {kind} to {recipient} ({title}) was sent by its events but is "
                        f"not in the notices table (deleted or altered){'' if n == 1 else f' ×{n}'}")
    for (kind, recipient, _, title), _ in (notices - rebuilt.notices).items():
        problems.append(f"case {case_id}: notice {kind} to {recipient} ({title}) is in the notices table "
                        "but no event sent it (added or altered)")
    return problems


def _check_users(conn: Connection) -> tuple[int, list[str]]:
    from duban.storage import repository as repo
    from duban.storage.tables import AUDIT

    users = {u["name"]: u for u in repo.list_users(conn)}
    added: dict[str, dict[str, Any]] = {}
    directory = select(AUDIT.c.seq, AUDIT.c.action, AUDIT.c.data).where(
        AUDIT.c.case_id.is_(None), AUDIT.c.action.in_(("user_added", "unit_renamed"))).order_by(AUDIT.c.seq)
    for seq, action, data in conn.execute(directory):
        if action == "user_added":
            added[data["user"]] = {"role": data["role"], "unit": data.get("unit"), "seq": seq}
        else:
            for who in added.values():
                if who["unit"] == data["old"]:
                    who["unit"] = data["new"]
    problems = []
    for name, who in added.items():
        row = users.get(name)
        if row is None:
            problems.append(f"user {name}: added by audit event {who['seq']} but missing from the users table (deleted)")
        elif (row["role"], row["unit"]) != (who["role"], who["unit"]):
            problems.append(f"user {name}: the users table says role {row['role']}, unit {row['unit'] or '-'}; audit "
                            f"event {who['seq']} added it as {who['role']}, unit {who['unit'] or '-'} (the row was edited)")
    acted = select(AUDIT.c.actor, AUDIT.c.role, AUDIT.c.seq).where(AUDIT.c.role.not_in(("system", "operator")))
    seen: set[tuple[str, str]] = set()
    for actor, role, seq in conn.execute(acted.order_by(AUDIT.c.seq)):
        if (actor, role) in seen:
            continue
        seen.add((actor, role))
        row = users.get(actor)
        if row is None:
            problems.append(f"user {actor}: acted in audit event {seq} as {role} but is not in the users table (deleted)")
        elif row["role"] != role:
            problems.append(f"user {actor}: the users table says role {row['role']}, audit event {seq} shows it acting "
                            f"as {role} (the row was edited)")
    return len(users), problems
