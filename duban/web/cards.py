"""红黄牌 and remaining time, as the board shows them (SPEC §13), read from the case JSON.

The engine records what happened (rungs fired, deadlines missed, the escalation level);
this only says it the way the office reads it:

* a deadline's **card**: 红牌 once its due instant has passed while it runs, 黄牌 once its
  yellow rung (level 1) is due or fired, else 绿; a case's card is the worst of its running
  deadlines and of its escalation level (1 黄牌, 2 and above 红牌); a closed case has none.
* **remaining time** in the deadline rule's own unit: working days for `wd` rules (counted
  on the office's working-day calendar), hours (minutes under an hour) for `h` and `min`
  rules, calendar days for the rest — 剩余 2 个工作日, 剩余 3 小时, 已超期 4 天.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from duban.engine.calendar import WorkingCalendar

GREEN, YELLOW, RED = "green", "yellow", "red"
CARD_LABELS = {GREEN: "绿", YELLOW: "黄牌", RED: "红牌"}
_RANK = {GREEN: 0, YELLOW: 1, RED: 2}
_UNIT = re.compile(r"\d+(wd|min|h|d|mo)")


@dataclass(frozen=True)
class Deadline:
    """One deadline as the board shows it."""

    name: str
    label: str
    due_at: str
    approximate: bool
    running: bool
    card: str | None
    remaining: str

    @property
    def card_label(self) -> str:
        return CARD_LABELS.get(self.card or "", "")


def rule_unit(rule: str | None) -> str:
    """`wd`, `h` (also for `min`) or `d` (days, months, dates and instants)."""
    m = _UNIT.fullmatch((rule or "").strip())
    unit = m.group(1) if m else "d"
    return "h" if unit in ("h", "min") else "wd" if unit == "wd" else "d"


def remaining(rule: str | None, due: datetime, now: datetime, tz: tzinfo, calendar: WorkingCalendar | None) -> str:
    """剩余 … / 今日到期 / 已超期 … for a deadline falling due at `due`."""
    unit = rule_unit(rule)
    late = now > due
    if unit == "h":
        seconds = abs((due - now).total_seconds())
        amount = f"{int(seconds // 3600)} 小时" if seconds >= 3600 else f"{max(1, int(seconds // 60))} 分钟"
        return f"已超期 {amount}" if late else f"剩余 {amount}"
    today, day = now.astimezone(tz).date(), due.astimezone(tz).date()
    first, last = (day, today) if late else (today, day)
    if unit == "wd" and calendar is not None:
        count = calendar.working_days_between(first, last)[0]
        amount = f"{count} 个工作日"
    else:
        count = (last - first).days
        amount = f"{count} 天"
    if count == 0:
        return "已超期" if late else "今日到期"
    return f"已超期 {amount}" if late else f"剩余 {amount}"


def deadlines(case: dict[str, Any], now: datetime, tz: tzinfo, calendar: WorkingCalendar | None) -> list[Deadline]:
    """Every deadline of the case, running ones with their card and remaining time."""
    shown = []
    for d in case.get("deadlines", []):
        due = datetime.fromisoformat(d["due_at"])
        running = d["status"] == "running" and case.get("closed_at") is None
        card = _deadline_card(case, d["name"], due, now) if running else None
        left = remaining(d["rule"], due, now, tz, calendar) if running else d.get("status_label", "")
        shown.append(Deadline(d["name"], d["label"], d["due_at"], bool(d["approximate"]), running, card, left))
    return shown


def _deadline_card(case: dict[str, Any], name: str, due: datetime, now: datetime) -> str:
    if now > due:
        return RED
    for t in case.get("timers", []):
        if t["kind"].split(":", 1)[0] != name or t.get("level") is None or t["level"] < 1:
            continue
        if t["status"] == "fired" or (t["status"] == "pending" and datetime.fromisoformat(t["due_at"]) <= now):
            return RED if t["level"] >= 2 else YELLOW
    return GREEN


def nearest(shown: list[Deadline]) -> Deadline | None:
    """The running deadline falling due first (the one a to-do line shows)."""
    running = [d for d in shown if d.running]
    return min(running, key=lambda d: datetime.fromisoformat(d.due_at)) if running else None


def case_card(case: dict[str, Any], shown: list[Deadline]) -> str | None:
    """The worst of the running deadlines' cards and the escalation level; None when closed."""
    if case.get("closed_at") is not None:
        return None
    level = int(case.get("escalation_level") or 0)
    card = RED if level >= 2 or case.get("overdue") else YELLOW if level == 1 else GREEN
    for d in shown:
        if d.card is not None and _RANK[d.card] > _RANK[card]:
            card = d.card
    return card


def due_sort_key(shown: list[Deadline]) -> tuple[int, datetime]:
    """Nearest deadline first; cases with no running deadline last."""
    first = nearest(shown)
    return (0, datetime.fromisoformat(first.due_at)) if first else (1, datetime.max.replace(tzinfo=UTC))
