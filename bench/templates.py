"""Template cases for `bench load`: real cases, made by the real `App` on a small database.

A few hundred cases of the five workflows are opened and walked at random for a hundred days
(one day at a time: each case takes one of its human triggers with some probability, the
office urges and the leader instructs now and then, and `tick` fires whatever fell due),
so they end up in every state the walk reaches, with real timers, notices and audit events.
`bench.load` then copies them, with other units, titles and instants, into a big office.

The template units and users have names that occur nowhere else (`TEMPLATE_LEAD`, …), so
a copy renames them by plain text substitution.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.common import TZ
from duban.clock import ManualClock
from duban.errors import DubanError
from duban.service.app import App
from duban.storage.database import Database
from duban.storage.tables import AUDIT, CASE_UNITS, CASES, NOTICES, TIMERS, WORKFLOW_VERSIONS

TEMPLATE_LEAD, TEMPLATE_CO = "模板甲单位", "模板乙单位"
OFFICE, LEADER, INSPECTOR = "王督查", "李副区长", "赵纪检"
WORKFLOWS = ("supervision", "complaint", "rectification", "opinion", "proposal")
SKIPPED = frozenset({"suspend", "resume", "request_extension", "approve_extension", "refuse_extension"})
DAYS = 100


def unit_user(unit: str) -> str:
    return f"{unit}联络员"


@dataclass
class Template:
    """One case's rows as read back (Python values: aware datetimes, decoded JSON)."""

    case: dict[str, Any]
    units: list[dict[str, Any]]
    timers: list[dict[str, Any]]
    notices: list[dict[str, Any]]
    events: list[dict[str, Any]]

    @property
    def closed(self) -> bool:
        return self.case["closed_at"] is not None


def _values(trigger: str, rnd: random.Random, lead: str) -> dict[str, str]:
    if trigger == "hold_accountable":
        return {"measure": rnd.choice(["诫勉谈话", "通报批评", "效能告诫"])}
    if trigger in ("revisit", "feedback"):
        return {"satisfied": rnd.choice(["yes", "yes", "yes", "no"])}
    if trigger == "dispatch":
        return {"unit": lead}
    return {}


def _open(app: App, wf: str, i: int, rnd: random.Random) -> int:
    due = {"supervision": f"{rnd.choice([10, 20, 30, 45])}wd", "rectification": "30wd"}.get(wf)
    values = {"level": "ordinary"} if wf == "opinion" and i % 3 else {}
    co = [TEMPLATE_CO] if i % 2 else []
    return int(app.open_case(wf, title=f"模板{wf}{i}", lead_unit=TEMPLATE_LEAD, co_units=co, due=due,
                             values=values, actor=OFFICE)["id"])


def _step(app: App, case_id: int, rnd: random.Random) -> None:
    case = app.show(case_id)
    if case["closed_at"] is not None:
        return
    choices = [t["trigger"] for t in case["allowed_triggers"] if t["trigger"] not in SKIPPED
               and any(r in t["roles"] for r in ("unit", "office", "leader"))]
    if rnd.random() < 0.35:
        note, actor = ("urge", OFFICE) if rnd.random() < 0.5 else ("instruct", LEADER)
        with contextlib.suppress(DubanError):  # e.g. a 批示 on a case in a state that takes none
            app.fire(case_id, note, actor=actor, note="请抓紧办理")
    if not choices:
        return
    if "hold_accountable" in choices and len(choices) > 1 and rnd.random() < 0.9:
        choices.remove("hold_accountable")  # a measure is the exception, not one step in three
    trigger = rnd.choice(choices)
    roles = next(t["roles"] for t in case["allowed_triggers"] if t["trigger"] == trigger)
    actor = unit_user(TEMPLATE_LEAD) if "unit" in roles else OFFICE if "office" in roles else LEADER
    with contextlib.suppress(DubanError):  # a guard said no (e.g. a second 重办): the walk goes on
        app.fire(case_id, trigger, actor=actor, note="按要求办理", values=_values(trigger, rnd, TEMPLATE_LEAD))


def build(folder: Path, now: datetime, per_workflow: int = 48, seed: int = 16) -> tuple[list[Template], list[dict[str, Any]]]:
    """Template cases walked from `now` - DAYS to `now`; also the pinned workflow rows."""
    rnd = random.Random(seed)
    clock = ManualClock(now - timedelta(days=DAYS))
    app = App(Database(f"sqlite:///{folder / 'templates.db'}"), clock, TZ)
    app.init()
    for unit in (TEMPLATE_LEAD, TEMPLATE_CO):
        app.add_unit(unit)
        app.add_user(unit_user(unit), "unit", unit)
    for name, role in ((OFFICE, "office"), (LEADER, "leader"), (INSPECTOR, "inspector")):
        app.add_user(name, role, None)
    # Each case gets its own pace (chance of a step a day) and its own day of opening, so
    # some are fresh and untouched, some overdue and escalated, some long closed.
    walks: list[tuple[int, float, int]] = []
    for day in range(DAYS):
        for wf in WORKFLOWS:
            for i in range(per_workflow):
                if i * DAYS // per_workflow == day:
                    walks.append((_open(app, wf, i, rnd), rnd.choice([0.0, 0.1, 0.3, 0.6]), day))
        for case_id, pace, _ in walks:
            if rnd.random() < pace:
                _step(app, case_id, rnd)
        app.tick()
        clock.advance(days=1)
    clock.set(now)
    app.tick()
    templates = _read(app)
    with app.db.read() as conn:
        pinned = [dict(r._mapping) for r in conn.execute(select(WORKFLOW_VERSIONS))]
    app.db.dispose()
    return templates, pinned


def _read(app: App) -> list[Template]:
    with app.db.read() as conn:
        by_id: dict[int, Template] = {}
        for r in conn.execute(select(CASES).order_by(CASES.c.id)):
            by_id[r.id] = Template(dict(r._mapping), [], [], [], [])
        for table, field in ((CASE_UNITS, "units"), (TIMERS, "timers"), (NOTICES, "notices")):
            order = TIMERS.c.id if table is TIMERS else NOTICES.c.id if table is NOTICES else CASE_UNITS.c.unit
            for r in conn.execute(select(table).order_by(order)):
                getattr(by_id[r.case_id], field).append(dict(r._mapping))
        for r in conn.execute(select(AUDIT).where(AUDIT.c.case_id.is_not(None)).order_by(AUDIT.c.seq)):
            by_id[r.case_id].events.append(dict(r._mapping))
    return list(by_id.values())
