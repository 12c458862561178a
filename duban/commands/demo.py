"""`duban demo`: a supervision office's year, from seed notice 000, in a few seconds.

The units and tasks are those of 昆政发〔2017〕16号 (seed 000, the 作风转变年 plan issued
2017-05-12) with its kinds of deadline — 5月底前, 6月底前, 年底前 and the quarterly
reports (按季度汇总). A manual clock starts on the notice's date and moves one day at a
time to the end of January 2018; each day the units do what the script says (sign,
report, one late report, one never signed) and `tick` fires whatever fell due, so the
yellow cards, red cards, 督办通知 and 通报 happen by themselves on the real 2017
working-day calendar. At the end the sample's people get a demo password, and the demo says
how to open the board on what it built (`duban serve`, the URL, who can sign in), or opens it
itself (`--serve`).

Only click is imported at module level (`duban --help` starts fast); the App loads in `run_demo`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from duban.commands.flags import cli_message
from duban.commands.support import json_option, settings, wants_json
from duban.errors import RefusedError, UsageError

if TYPE_CHECKING:
    from duban.service.app import App

START = date(2017, 5, 12)
END = date(2018, 1, 31)

UNITS = ["区发改局", "区政府法制办", "区市场监管局", "区政务服务中心", "区政府办公室"]  # the unit directory (单位名录)
USERS = [
    ("王督查", "office", None), ("李副区长", "leader", None), ("赵纪检", "inspector", None),
    ("发改局联络员", "unit", "区发改局"), ("法制办联络员", "unit", "区政府法制办"),
    ("市场监管局联络员", "unit", "区市场监管局"), ("政务中心联络员", "unit", "区政务服务中心"),
    ("政府办联络员", "unit", "区政府办公室"),
]
# Printed by the demo and in the README: a sample database, never an office's.
DEMO_PASSWORD = "Demo-duban-2017"
URL = "http://127.0.0.1:8080/"


@dataclass(frozen=True)
class Task:
    key: str
    title: str
    unit: str
    co_units: tuple[str, ...]
    due: str
    plan: tuple[tuple[date, str, str], ...]  # (day, trigger, actor) the script plays


def _tasks() -> list[Task]:
    office, fgj, fzb, zwzx, zfb = "王督查", "发改局联络员", "法制办联络员", "政务中心联络员", "政府办联络员"
    return [
        Task("ledger", "建立未落实政策问题台帐，汇总需区政府协调解决的问题（5月底前）", "区发改局", ("区政府办公室",),
             "2017-05-31", ((date(2017, 5, 15), "accept", fgj), (date(2017, 5, 26), "report", fgj),
                            (date(2017, 5, 31), "verify", office))),
        Task("dynamic", "强化政策动态管理，清理过期政策并形成书面报告（6月底前）", "区发改局", (),
             "2017-06-30", ((date(2017, 5, 16), "accept", fgj), (date(2017, 7, 6), "report", fgj),
                            (date(2017, 7, 7), "verify", office))),
        Task("q2", "政策研究落实情况按季度汇总（第二季度）", "区发改局", ("区政府办公室",),
             "2017-06-30", ((date(2017, 5, 15), "accept", fgj), (date(2017, 6, 28), "report", fgj),
                            (date(2017, 6, 29), "verify", office))),
        Task("q3", "政策研究落实情况按季度汇总（第三季度）", "区发改局", ("区政府办公室",),
             "2017-09-30", ((date(2017, 7, 3), "accept", fgj), (date(2017, 9, 26), "report", fgj),
                            (date(2017, 9, 27), "reject", office), (date(2017, 9, 29), "report", fgj),
                            (date(2017, 10, 9), "verify", office))),
        Task("certs", "公布本区行政许可证明事项清单（年底前）", "区政府法制办", ("区政务服务中心",),
             "2017-12-31", ((date(2017, 5, 15), "accept", fzb), (date(2017, 12, 20), "report", fzb),
                            (date(2017, 12, 22), "verify", office))),
        Task("agency", "建立涉审中介服务收费目录清单（年底前）", "区政府法制办", (),
             "2017-12-31", ((date(2017, 5, 17), "accept", fzb),)),
        Task("licence", "有序推进“六证合一”改革（6月底前）", "区市场监管局", (),
             "2017-06-30", ()),
        Task("standard", "开展政务服务标准化建设（年底前）", "区政务服务中心", (),
             "2017-12-31", ((date(2017, 5, 15), "accept", zwzx), (date(2017, 11, 30), "report", zwzx),
                            (date(2017, 12, 4), "verify", office))),
        Task("bulletin_q3", "围绕作风转变年活动开展督查问效，每季度通报（第三季度）", "区政府办公室", (),
             "2017-09-30", ((date(2017, 5, 16), "accept", zfb), (date(2017, 9, 29), "report", zfb),
                            (date(2017, 10, 9), "verify", office))),
    ]


@click.command()
@click.option("--serve", "then_serve", is_flag=True,
              help="Then start the board on what it built (duban serve, as of the demo's last day, plain HTTP).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="With --serve: the port of the board on 127.0.0.1.")
@json_option
@click.pass_context
def demo(ctx: click.Context, then_serve: bool, port: int, as_json: bool) -> None:
    """Build a sample from the seed notices and run the clock forward through months."""
    s = settings()
    if then_serve and wants_json(as_json):
        raise UsageError("--serve starts a server and --json prints one document: choose one")
    report = run_demo(s.db, s.tz, echo=None if wants_json(as_json) else click.echo)
    if wants_json(as_json):
        from duban.present.output import emit_json

        emit_json(report)
    if then_serve:
        from duban.commands.serve import serve

        s.now = report["board"]["as_of"]  # the board shows the demo's last day, as its printed command does
        ctx.invoke(serve, host="127.0.0.1", port=port, workers=1, insecure_cookies=True, with_scheduler=False)


def run_demo(db_url: str, tz: tzinfo, echo: Callable[[str], Any] | None = print) -> dict[str, Any]:
    """Build the sample in `db_url` (which must hold no cases) and play it; returns a summary."""
    from duban.bootstrap import build_app
    from duban.clock import ManualClock

    say = echo or (lambda _text: None)
    _refuse_existing(db_url)
    clock = ManualClock(datetime.combine(START, time(9, 0), tz))
    app = build_app(db_url, clock, tz)  # the demo's log lines carry its simulated time
    app.init()
    for unit in UNITS:
        app.add_unit(unit, via="demo")
    for name, role, unit_name in USERS:
        app.add_user(name, role, unit_name, via="demo")
    ids: dict[str, int] = {}
    for task in _tasks():
        ids[task.key] = app.open_case("supervision", title=task.title, lead_unit=task.unit,
                                      co_units=list(task.co_units), due=task.due, values={}, actor="王督查")["id"]
    say(f"昆都仑区“作风转变年”督办 — {len(ids)} 项任务于 {START} 交办 (seed 000, 昆政发〔2017〕16号)")
    say(f"模拟时钟 {START} → {END}，每天 09:00 处理到期计时器\n")
    plays = sorted(((d, task.key, trig, who) for task in _tasks() for d, trig, who in task.plan), key=lambda p: p[0])
    timeline: list[dict[str, Any]] = []
    day = START
    while day <= END:
        clock.set(datetime.combine(day, time(9, 0), tz))
        for line in app.tick().lines:
            timeline.append({"date": day.isoformat(), "event": line})
            say(f"{day}  ⏰ {line}")
        for _, key, trigger, who in (p for p in plays if p[0] == day):
            note = "报告内容不完整，请补充第三季度数据" if trigger == "reject" else ""
            try:
                case = app.fire(ids[key], trigger, actor=who, note=note)
            except RefusedError as exc:  # e.g. reporting a case that is already closed
                say(f"{day}  ✗ {who}：{cli_message(exc)}")
                continue
            timeline.append({"date": day.isoformat(), "event": f"case {ids[key]} {trigger} by {who} → {case['state']}"})
            say(f"{day}  ✎ {who}：案件 {ids[key]} {case['step']['trigger_label']} → {case['state_label']}")
        day += timedelta(days=1)
    clock.set(datetime.combine(END, time(10, 0), tz))
    worst = max(app.list_cases(), key=lambda c: c["escalation_level"])
    decided = app.fire(worst["id"], "hold_accountable", actor="李副区长", note="长期未签收未办理",
                       values={"measure": "诫勉谈话"})
    say(f"{END}  ⚖ 李副区长：案件 {worst['id']} 问责（诫勉谈话）→ {decided['state_label']}")
    summary = _summary(app, timeline, say)
    summary["board"] = _open_the_board(app, db_url, clock.now(), say)
    return summary


def _open_the_board(app: App, db_url: str, as_of: datetime, say: Callable[[str], Any]) -> dict[str, Any]:
    """Give every demo user the demo password (through the sign-in service, audited like
    `duban user passwd`) and print how to serve the board as of the demo's last day."""
    from duban.access.service import Access
    from duban.present.labels import role_label

    access = Access(app)
    for name, _, _ in USERS:
        access.set_password(name, DEMO_PASSWORD, via="demo")
    now = as_of.astimezone(app.tz).strftime("%Y-%m-%dT%H:%M")
    command = f"duban --db {db_url} --now {now} serve --insecure-cookies"
    say("\n打开督办看板（按演示的最后一天显示）：")
    say(f"  {command}")
    say(f"  然后在浏览器打开 {URL}，用下列任一用户登录，密码均为 {DEMO_PASSWORD}：")
    say("  " + "、".join(f"{name}（{role_label(role)}{'·' + unit if unit else ''}）" for name, role, unit in USERS))
    return {"command": command, "url": URL, "password": DEMO_PASSWORD, "users": [u[0] for u in USERS], "as_of": now}


def _refuse_existing(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        if path.exists() and path.stat().st_size > 0:
            raise RefusedError(f"{path} already exists: run the demo in an empty folder or give --db a new file")


def _summary(app: App, timeline: list[dict[str, Any]], say: Callable[[str], Any]) -> dict[str, Any]:
    from duban.present.output import table, timed

    cases = app.list_cases()
    notices = app.notices()
    count, head, broken = app.verify()
    say("\n结果：")
    say(table(timed(cases), [("id", "编号"), ("state_label", "状态"), ("lead_unit", "牵头单位"), ("due_at", "办结时限"),
                      ("escalation_label", "预警级别"), ("title", "标题")]))
    say(f"\n{len(notices)} 条通知（duban notice list）；审计链 {count} 条事件，"
        + ("校验通过 ✓" if broken is None else f"校验失败 ✗ {broken}"))
    say(f"数据库：{app.db.display_url}  — 试试：duban case show {_worth_a_look(cases)}；duban case history "
        f"{_worth_a_look(cases)}；duban audit verify")
    return {"cases": [{k: c[k] for k in ("id", "state", "escalation_level", "overdue", "title")} for c in cases],
            "timeline": timeline, "notices": len(notices), "audit_events": count, "chain_ok": broken is None,
            "chain_head": head, "database": app.db.display_url}


def _worth_a_look(cases: list[dict[str, Any]]) -> int:
    """The case the demo suggests showing: the most escalated one still open (the one never
    signed for, at 通报), as the README's Quick start says."""
    still_open = [c for c in cases if c["closed_at"] is None] or cases
    return int(max(still_open, key=lambda c: (c["escalation_level"], -c["id"]))["id"])
