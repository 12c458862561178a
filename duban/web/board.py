"""红黄牌看板 (SPEC §13): per unit, its open cases by card and escalation level, and this
quarter's on-time rate, with a bar chart drawn here as SVG (no script, no CDN).

A case counts for its lead unit (牵头单位): the unit that moves it and answers for it
(`duban.engine.timeliness`). A unit user's board shows its own unit only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from duban.present.labels import LEVEL_LABELS
from duban.web import cards, query, render, scope
from duban.web.auth import Principal, page_principal, web_of

router = APIRouter(include_in_schema=False)
Signed = Annotated[Principal, Depends(page_principal)]
COLOURS = {cards.GREEN: "#2e7d32", cards.YELLOW: "#f2a900", cards.RED: "#c62828"}
ROW, LABEL_WIDTH, BAR_WIDTH = 30, 150, 420


@dataclass
class UnitRow:
    unit: str
    cards: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLOURS, 0))
    levels: dict[int, int] = field(default_factory=dict)
    closed: int = 0
    on_time: int = 0

    @property
    def open(self) -> int:
        return sum(self.cards.values())

    @property
    def on_time_rate(self) -> str:
        return f"{100 * self.on_time / self.closed:.0f}%" if self.closed else "-"


@dataclass(frozen=True)
class Bar:
    x: int
    width: int
    colour: str
    count: int
    label: str


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def rows(app: Any, user: Any) -> list[UnitRow]:
    now, calendar = app.clock.now(), query.working_calendar(app)
    since = quarter_start(now.astimezone(app.tz).date())
    units = [user.unit] if user.role == "unit" else [u["name"] for u in app.units()]
    table = {u: UnitRow(u) for u in units}
    for case in app.list_cases():
        row = table.get(case["lead_unit"])
        if row is None or not scope.sees(user, case):
            continue
        if case["closed_at"] is None:
            card = cards.case_card(case, cards.deadlines(case, now, app.tz, calendar)) or cards.GREEN
            row.cards[card] += 1
            level = int(case["escalation_level"])
            row.levels[level] = row.levels.get(level, 0) + 1
        elif datetime.fromisoformat(case["closed_at"]).date() >= since:
            row.closed += 1
            row.on_time += 0 if case["was_overdue"] else 1
    return sorted(table.values(), key=lambda r: (-r.cards[cards.RED], -r.cards[cards.YELLOW], -r.open, r.unit))


def bars(row: UnitRow, widest: int) -> list[Bar]:
    """The unit's stacked bar: 红牌, 黄牌, 绿 from the left, scaled to the widest unit."""
    out, x = [], LABEL_WIDTH
    for card in (cards.RED, cards.YELLOW, cards.GREEN):
        count = row.cards[card]
        if count:
            width = max(2, round(BAR_WIDTH * count / widest))
            out.append(Bar(x, width, COLOURS[card], count, cards.CARD_LABELS[card]))
            x += width
    return out


@router.get("/board", response_class=HTMLResponse)
def board(request: Request, p: Signed) -> Response:
    app = web_of(request).app
    found = rows(app, p.user)
    widest = max([r.open for r in found] + [1])
    levels = sorted({lv for r in found for lv in r.levels})
    chart = [(i, r, bars(r, widest)) for i, r in enumerate(found)]
    return render.page(request, "board.html", p, nav="board", rows=found, chart=chart, levels=levels,
                       level_labels=LEVEL_LABELS, colours=COLOURS, row_height=ROW, label_width=LABEL_WIDTH,
                       chart_height=ROW * len(found) + 10, chart_width=LABEL_WIDTH + BAR_WIDTH + 40,
                       quarter=quarter_start(app.clock.now().astimezone(app.tz).date()))
