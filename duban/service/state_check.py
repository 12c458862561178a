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

The directory: each `user_added` event of the log (`duban.service.directory`) says who was added
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

    from duban.engine.model import Outcome
    from duban.service.app import App

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
        return [f"案件 {case_id}：案件表中有它，但没有审计事件属于它（该行是添加的）"]
    rebuilt = _Rebuilt()
    try:
        replayed = replay(app.engine(conn), app.workflow_of(conn, stored), events, rebuilt)
    except Exception as exc:  # an event the definition cannot replay: the log and the rows disagree
        return [f"案件 {case_id}：其审计事件无法按锁定的流程版本重放（{exc}）"]
    problems = [f"案件 {case_id}：案件表与事件重放的结果不符 — {d}" for d in differences(stored, replayed)]
    rows = list(conn.execute(select(TIMERS.c.id, TIMERS.c.deadline, TIMERS.c.rung, TIMERS.c.due_at, TIMERS.c.status)
                             .where(TIMERS.c.case_id == case_id)))
    live = Counter((r.deadline, r.rung, r.due_at) for r in rows if r.status in LIVE)
    expected = rebuilt.live()
    for (deadline, rung, due), n in (expected - live).items():
        gone = [r.id for r in rows if (r.deadline, r.rung, r.due_at) == (deadline, rung, due)]
        how = f"计时器行 {', '.join(map(str, gone))} 不是待触发状态" if gone else "其行已不存在"
        problems.append(f"案件 {case_id}：计时器 {deadline}#{rung}（到期 {due.isoformat()}）按其事件应为待触发，"
                        f"但{how}（在数据库中被取消或删除）{'' if n == 1 else f' ×{n}'}")
    for (deadline, rung, due), _ in (live - expected).items():
        extra = [r.id for r in rows if (r.deadline, r.rung, r.due_at) == (deadline, rung, due) and r.status in LIVE]
        problems.append(f"案件 {case_id}：计时器行 {', '.join(map(str, extra))}（{deadline}#{rung}，到期 {due.isoformat()}）"
                        "为待触发，但没有事件设置它（在数据库中添加或重开）")
    notices = Counter((r.kind, r.recipient, r.level, r.title) for r in conn.execute(
        select(NOTICES.c.kind, NOTICES.c.recipient, NOTICES.c.level, NOTICES.c.title).where(NOTICES.c.case_id == case_id)))
    for (kind, recipient, _, title), n in (rebuilt.notices - notices).items():
        problems.append(f"案件 {case_id}：通知“{kind}”致 {recipient}（{title}）由其事件发出，但通知表中没有"
                        f"（被删除或改动）{'' if n == 1 else f' ×{n}'}")
    for (kind, recipient, _, title), _ in (notices - rebuilt.notices).items():
        problems.append(f"案件 {case_id}：通知“{kind}”致 {recipient}（{title}）在通知表中，但没有事件发出它（添加或改动）")
    return problems + _check_watches(conn, case_id, events)


def _check_watches(conn: Connection, case_id: int, events: list[dict[str, Any]]) -> list[str]:
    """The 关注 rows must be what the case's watch / unwatch events leave."""
    from duban.storage import watches

    expected: set[str] = set()
    for e in events:
        if e["action"] == "watched":
            expected.add(e["actor"])
        elif e["action"] == "unwatched":
            expected.discard(e["actor"])
    stored = watches.watchers(conn, case_id)
    return [f"案件 {case_id}：关注记录与事件不符 — {who} {'按事件应在关注，但关注表中没有' if who in expected else '在关注表中，但没有事件关注它'}"
            for who in sorted(expected ^ stored)]


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
            problems.append(f"用户 {name}：由审计事件 {who['seq']} 添加，但用户表中没有（被删除）")
        elif (row["role"], row["unit"]) != (who["role"], who["unit"]):
            problems.append(f"用户 {name}：用户表中为角色 {row['role']}、单位 {row['unit'] or '-'}；审计事件 {who['seq']} "
                            f"添加时为角色 {who['role']}、单位 {who['unit'] or '-'}（该行被改过）")
    acted = select(AUDIT.c.actor, AUDIT.c.role, AUDIT.c.seq).where(AUDIT.c.role.not_in(("system", "operator")))
    seen: set[tuple[str, str]] = set()
    for actor, role, seq in conn.execute(acted.order_by(AUDIT.c.seq)):
        if (actor, role) in seen:
            continue
        seen.add((actor, role))
        row = users.get(actor)
        if row is None:
            problems.append(f"用户 {actor}：在审计事件 {seq} 中以角色 {role} 操作，但用户表中没有（被删除）")
        elif row["role"] != role:
            problems.append(f"用户 {actor}：用户表中为角色 {row['role']}，审计事件 {seq} 中以角色 {role} 操作（该行被改过）")
    return len(users), problems
