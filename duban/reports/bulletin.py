"""`report bulletin`: the 通报 of a week, month or quarter (seed 000 季通报, seed 003 每周一报).

For the period: cases newly assigned, cases closed (on time or late), cases with a deadline
passed unmet some time in the period (red card 红牌: every deadline the lead unit owes counts,
so a missed 重办 or press conference too, whether or not it was met later in the period),
cases at risk at its end or now if sooner (yellow card 黄牌: level 1 reached, not red), the
escalations that raised a case's level (reminders such as 报送提醒 and 催签 are not
escalations) and the accountability decisions taken, each list by lead unit, with a
summary of the counts per unit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from duban.reports import Report, Section
from duban.reports.facts import (
    HOLD,
    RUNG_ACTIONS,
    Batch,
    CaseView,
    Events,
    closed_on_time,
    describe_late,
    held_accountable,
    level_at,
    missed_in,
    open_at,
    raised_level,
)
from duban.reports.period import Period

ITEM_COLUMNS = [
    ("unit", "牵头单位"), ("case_id", "编号"), ("title", "标题"), ("workflow_label", "流程"),
    ("state_label", "当前状态"), ("due_at", "办结时限"), ("at", "时间"), ("detail", "说明"),
]
SUMMARY_COLUMNS = [
    ("unit", "牵头单位"), ("new", "新交办"), ("closed", "办结"), ("closed_on_time", "其中按时"),
    ("red", "红牌超期"), ("yellow", "黄牌预警"), ("escalations", "升级督办"), ("accountability", "问责"),
]
LISTS = (
    ("new", "新交办"), ("closed", "办结"), ("red", "红牌超期"), ("yellow", "黄牌预警"),
    ("escalations", "升级督办"), ("accountability", "问责决定"),
)


def _item(v: CaseView, at: datetime | None, detail: str) -> dict[str, Any]:
    c = v.case
    return {"unit": c.lead_unit, "case_id": c.id, "title": c.title, "workflow_label": v.wf.spec.label,
            "state_label": v.wf.state_label(c.state), "due_at": c.due_at, "at": at, "detail": detail}


def items_of(batches: Iterable[Batch], period: Period, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """The bulletin's lists, each sorted by unit, then time, then case, over cases read a
    batch at a time: only the rows listed are kept. The order the
    cases come in does not matter: rows of equal (unit, time, case) are one case's, added in
    its events' order."""
    as_of = period.as_of(now)
    out: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in LISTS}
    for views, events in batches:
        for v in views:
            _add(out, v, events.get(v.id, []), period, as_of)
    for rows in out.values():
        rows.sort(key=lambda r: (r["unit"], r["at"] or as_of, r["case_id"]))
    return out


def _add(out: dict[str, list[dict[str, Any]]], v: CaseView, evs: list[dict[str, Any]], period: Period,
         as_of: datetime) -> None:
    """The rows one case adds to the lists."""
    c = v.case
    if c.opened_at in period:
        out["new"].append(_item(v, c.opened_at, ""))
    if c.closed_at in period:
        verdict = "问责" if held_accountable(c) else "按时办结" if closed_on_time(v) else "逾期办结"
        out["closed"].append(_item(v, c.closed_at, verdict))
    missed = missed_in(v, period.start, as_of) if c.opened_at < as_of else None
    if missed is not None:
        d, late = missed
        closed = f"，{v.wf.state_label(c.state)}" if c.closed_at is not None and c.closed_at <= as_of else ""
        row = _item(v, d.due_at, f"超期{describe_late(late)}（{_deadline_label(v, d.name)}）{closed}")
        out["red"].append({**row, "due_at": d.due_at})  # the deadline that was missed, not the case's next
    elif open_at(c, as_of) and level_at(evs, as_of) == 1:
        out["yellow"].append(_item(v, _first_yellow(evs, as_of), "黄牌预警：临近办结时限"))
    for e in evs:
        if e["at"] not in period:
            continue
        if raised_level(e):
            notice = e["data"].get("notice")
            out["escalations"].append(_item(v, e["at"], e["note"] + (f"（{notice}）" if notice else "")))
        elif e.get("trigger") == HOLD:
            measure = e["data"].get("measure") or c.data.get("measure") or ""
            out["accountability"].append(_item(v, e["at"], f"{measure}（{e['actor']}）{e['note']}".strip()))


def _deadline_label(v: CaseView, name: str) -> str:
    spec = v.wf.deadline_specs(v.case.data).get(name)
    return spec.label if spec else name


def _first_yellow(events: list[dict[str, Any]], as_of: datetime) -> datetime | None:
    return next((e["at"] for e in events if e["action"] in RUNG_ACTIONS and e["at"] <= as_of
                 and int(e["data"].get("level") or 0) == 1), None)


def summary(lists: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per unit with a row in some list, how many rows each list has (one pass over the rows)."""
    counts: dict[str, Counter[str]] = {}
    for key, _ in LISTS:
        for r in lists[key]:
            counts.setdefault(r["unit"], Counter())[key] += 1
    for r in lists["closed"]:
        if r["detail"] == "按时办结":
            counts[r["unit"]]["closed_on_time"] += 1
    return [{"unit": u, **{key: c[key] for key, _ in LISTS}, "closed_on_time": c["closed_on_time"]}
            for u, c in sorted(counts.items())]


def build(views: Sequence[CaseView], events: Events, period: Period, now: datetime) -> Report:
    """The bulletin of a period: a summary per unit, then each list."""
    return build_batches([(views, events)], period, now)


def build_batches(batches: Iterable[Batch], period: Period, now: datetime) -> Report:
    """`build` over cases read a batch at a time (`duban.service.reviews`)."""
    lists = items_of(batches, period, now)
    sections = [Section("summary", "汇总", SUMMARY_COLUMNS, summary(lists))]
    sections += [Section(key, title, ITEM_COLUMNS, lists[key]) for key, title in LISTS]
    as_of = period.as_of(now)
    return Report(
        name="bulletin", title="督办通报", period=period, generated_at=now,
        sections=sections, meta={"as_of": as_of},
    )
