"""The `duban` command line (SPEC §8).

Errors map to exit codes in exactly one place (`_Top.invoke`): 2 usage, 3 not found,
4 refused, 5 conflict, 6 integrity, 1 anything else; the message on stderr says what was
wrong and what would be allowed. Heavy modules (SQLAlchemy, transitions, pydantic) are
imported inside the commands so `duban --help` starts fast.
"""

from __future__ import annotations

import os
from typing import Any

import click

from duban.commands.support import ROW_ID, Settings, WorkflowArgument, json_option, out, settings, wants_json
from duban.errors import DubanError, UsageError

CASE_COLUMNS = [
    ("id", "编号"), ("workflow_label", "流程"), ("state_label", "状态"), ("title", "标题"),
    ("lead_unit", "牵头单位"), ("due_at", "办结时限"), ("escalation_label", "预警级别"), ("overdue", "超期"),
    ("was_overdue", "曾超期"),  # a deadline was missed, even if the case has closed since (SPEC §16)
]


class _Top(click.Group):
    def main(self, args: Any = None, *rest: Any, **kw: Any) -> Any:
        import sys

        from duban.commands.support import bad_argument

        problem = bad_argument(list(sys.argv[1:] if args is None else args))
        if problem:  # before click parses anything: no text that cannot be stored gets further
            click.echo(f"error: {problem}", err=True)
            sys.exit(UsageError.exit_code)
        return super().main(args, *rest, **kw)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DubanError as exc:
            from duban.commands.flags import cli_message

            click.echo(f"error: {cli_message(exc)}", err=True)  # each field it names, by its option
            ctx.exit(exc.exit_code)


def parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set '{pair}': use KEY=VALUE (e.g. --set measure=诫勉谈话)")
        values[key.strip()] = value.strip()
    return values


def parse_milestone(text: str) -> tuple[str, str]:
    day, sep, title = text.partition("=")
    if not sep or not day.strip() or not title.strip():
        raise UsageError(f"--milestone '{text}': use DATE=TITLE (e.g. --milestone 2027-03-31=完成方案编制)")
    return day.strip(), title.strip()



@click.group(cls=_Top, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="DUBAN_DB", default="sqlite:///duban.db", show_default=True, help="Database URL (env DUBAN_DB).")
@click.option("--now", envvar="DUBAN_NOW", help="Pin the clock to this ISO instant (env DUBAN_NOW).")
@click.option("--tz", envvar="DUBAN_TZ", default="Asia/Shanghai", show_default=True, help="The office's zone (env DUBAN_TZ).")
@click.option("--actor", envvar="DUBAN_ACTOR", help="Who acts: a user of the directory (env DUBAN_ACTOR).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document and nothing else.")
@click.version_option(package_name="duban")
@click.pass_context
def cli(ctx: click.Context, db: str, now: str | None, tz: str, actor: str | None, as_json: bool) -> None:
    """duban 督办 — durable supervision cases with working-day deadlines and an audit chain."""
    from duban.logconfig import configure

    configure(defer=True)  # structlog loads at the first logged line: `case show` logs none
    if "://" not in db:
        db = f"sqlite:///{db}"  # a plain path means a SQLite file
    ctx.obj = Settings(db, now, tz, actor, as_json)


# -- operator ---------------------------------------------------------------------------
@cli.command()
@json_option
def init(as_json: bool) -> None:
    """Create or upgrade the database (idempotent); seed the working-day calendar."""
    result = settings().app.init()
    years = result["calendar_years"]
    out(result, as_json, lambda: f"database ready: {result['database']}"
        + (f" (calendar {years[0]}–{years[1]} seeded from chinesecalendar)" if years else ""))


@cli.group()
def user() -> None:
    """The directory: who may act, in which role and unit."""


ROLE_HELP = "office 督查室（交办、审核）| unit 承办单位（签收、办理、报告；须带 --unit）| leader 分管领导（问责）| inspector 纪检监察（查阅）"


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["office", "unit", "leader", "inspector"]), help=ROLE_HELP)
@click.option("--unit", help="承办单位用户所属的单位；名录中没有时一并加入名录（其他角色不带 --unit）。")
@click.option("--email", help="邮箱：本单位（或本角色）的通知按路由发到这里（notify，SPEC §14）。")
@click.option("--mobile", help="手机号（11 位，可带 +86）。")
@json_option
def user_add(name: str, role: str, unit: str | None, email: str | None, mobile: str | None, as_json: bool) -> None:
    """Add a user to the directory (name NFKC-normalised and trimmed; audited)."""
    from duban.service.directory import ROLE_LABELS

    r = settings().app.add_user(name, role, unit, via="cli", email=email, mobile=mobile)
    out(r, as_json, lambda: f"已添加用户 {r['name']}（{ROLE_LABELS[role]}{'，' + r['unit'] if r['unit'] else ''}）"
        + (f"\n已将单位“{r['unit']}”加入单位名录" if r["unit_added"] else ""))


@user.command("list")
@json_option
def user_list(as_json: bool) -> None:
    """List the directory."""
    from duban.present.labels import role_label
    from duban.present.output import table

    rows = settings().app.users()
    out(rows, as_json, lambda: table([{**r, "role_label": role_label(r["role"])} for r in rows],
                                     [("name", "姓名"), ("role_label", "角色"), ("unit", "单位")]))


@cli.group()
def unit() -> None:
    """The unit directory (单位名录): every unit a case or a user may name."""


@unit.command("add")
@click.argument("name")
@json_option
def unit_add(name: str, as_json: bool) -> None:
    """Add a unit (name NFKC-normalised and trimmed; audited)."""
    r = settings().app.add_unit(name, via="cli")
    out(r, as_json, lambda: f"已将单位“{r['name']}”加入单位名录")


@unit.command("list")
@json_option
def unit_list(as_json: bool) -> None:
    """The units, with their users, cases and former names (曾用名)."""
    from duban.present.output import table

    rows = settings().app.units()
    shown = [{**u, "former": "、".join(u["former_names"])} for u in rows]
    out(rows, as_json, lambda: table(shown, [("name", "单位"), ("users", "用户数"), ("cases", "案件数"),
                                             ("open_cases", "在办案件"), ("former", "曾用名")]))


@unit.command("rename")
@click.argument("old")
@click.argument("new")
@json_option
def unit_rename(old: str, new: str, as_json: bool) -> None:
    """Rename a unit: its cases, users and notices take the new name; the audit log keeps the old one."""
    r = settings().app.rename_unit(old, new, via="cli")
    out(r, as_json, lambda: f"单位“{r['old']}”已更名为“{r['new']}”（涉及 {len(r['cases'])} 件案件）")


# -- workflows --------------------------------------------------------------------------
@cli.group()
def workflow() -> None:
    """Workflow definitions: list, show, validate, graph."""


@workflow.command("list")
@json_option
def workflow_list(as_json: bool) -> None:
    """The workflows new cases can use (newest version of each)."""
    from duban.present.output import table
    from duban.workflows import Catalog

    catalog = Catalog()
    rows = [{"name": w.name, "version": w.version, "label": w.spec.label, "states": len(w.spec.states),
             "source": w.source} for w in (catalog.latest(n) for n in catalog.names())]
    out(rows, as_json, lambda: table(rows, [("name", "名称"), ("label", "流程"), ("version", "版本"), ("states", "状态数")]))


@workflow.command("show")
@click.argument("name")
@json_option
def workflow_show(name: str, as_json: bool) -> None:
    """States, triggers, deadlines and ladders of a workflow."""
    from duban.present.workflow_text import describe
    from duban.workflows import Catalog

    catalog = Catalog()
    wf = catalog.latest(name)
    # the office's reading of a case received on a rest day, with where it comes from (SPEC §16)
    rest = {"rest_day_start": catalog.rest_day_start, "source": catalog.rest_day_source}
    out({**wf.spec.model_dump(), "source": wf.source, "calendar": rest}, as_json,
        lambda: describe(wf) + f"\n\n休息日收件起算 rest_day_start: {rest['rest_day_start']} ({rest['source']})")


@workflow.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def workflow_validate(file: str, as_json: bool) -> None:
    """Check a workflow file; exit 4 naming the file, the path inside it and the reason."""
    from duban.workflows import load_file

    wf = load_file(file)
    result = {"file": file, "valid": True, "name": wf.name, "version": wf.version,
              "states": len(wf.spec.states), "triggers": len({t.trigger for t in wf.spec.transitions})}
    out(result, as_json, lambda: f"{file}: ok — {wf.name} v{wf.version}, {result['states']} states, {result['triggers']} triggers")


@workflow.command("graph")
@click.argument("name")
@json_option
def workflow_graph(name: str, as_json: bool) -> None:
    """The state diagram as Mermaid text."""
    from duban.workflows import Catalog

    wf = Catalog().latest(name)
    out({"name": wf.name, "version": wf.version, "mermaid": wf.mermaid()}, as_json, wf.mermaid)


# -- cases ------------------------------------------------------------------------------
@cli.group()
def case() -> None:
    """Open, advance and read cases."""


@case.command("open", cls=WorkflowArgument)
@click.argument("workflow_name", metavar="WORKFLOW")
@click.option("--title", required=True, help="The case's title (标题), as the notices and reports will show it.")
@click.option("--unit", "lead_unit", required=True, help="The lead unit (牵头单位).")
@click.option("--co-unit", "co_units", multiple=True, help="A co-unit (配合单位); repeatable.")
@click.option("--due", help="Due rule: 2027-05-31, 15wd, 3d, 3mo, 5h, 30min or an ISO datetime.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="A workflow field; repeatable.")
@click.option("--milestone", "milestones", multiple=True, metavar="DATE=TITLE",
              help="A milestone (时间节点) with its own deadline; repeatable.")
@click.option("--report", "report", metavar="SCHEDULE", help="Progress reports: monthly:5 (by the 5th) or biweekly.")
@json_option
def case_open(workflow_name: str, title: str, lead_unit: str, co_units: tuple[str, ...], due: str | None,
              sets: tuple[str, ...], milestones: tuple[str, ...], report: str | None, as_json: bool) -> None:
    """Open a case of WORKFLOW (one of those listed below); prints its id."""
    from duban.present.labels import shown_time

    s = settings()
    result = s.app.open_case(workflow_name, title=title, lead_unit=lead_unit, co_units=list(co_units),
                             due=due, values=parse_sets(sets), actor=s.actor,
                             milestones=[parse_milestone(m) for m in milestones], report=report)
    approx = "（约，日历未载入）" if result["approximate"] else ""
    out(result, as_json, lambda: f"{result['id']}\t{result['state_label']}\t办结时限 {shown_time(result['due_at'])}{approx}")


@case.command("fire")
@click.argument("case_id", type=ROW_ID)
@click.argument("trigger")
@click.option("--note", default="", help="Why (required for reject, return …).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A value the trigger needs, e.g. measure=诫勉谈话, until=2027-06-30, unit=区财政局; repeatable.")
@click.option("--expect-version", type=int, help="Refuse (exit 5) unless the case is still at this version.")
@json_option
def case_fire(case_id: int, trigger: str, note: str, sets: tuple[str, ...], expect_version: int | None,
              as_json: bool) -> None:
    """Fire TRIGGER (its identifier or its label: accept or 签收) on a case as --actor."""
    s = settings()
    result = s.app.fire(case_id, trigger, actor=s.actor, note=note, values=parse_sets(sets),
                        expected_version=expect_version)
    out(result, as_json, lambda: f"案件 {case_id}：{result['step']['trigger_label']} → {result['state_label']}")


@case.command("attach")
@click.argument("case_id", type=ROW_ID)
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False, readable=True))
@json_option
def case_attach(case_id: int, path: str, as_json: bool) -> None:
    """Attach FILE (at most 20 MB) to a case as --actor (the office, or a unit of the case)."""
    import mimetypes
    from pathlib import Path

    from duban.service.attachments import add

    s = settings()
    kind = mimetypes.guess_type(path)[0]
    with open(path, "rb") as stream:  # read a chunk at a time: refused as soon as it passes 20 MB
        result = add(s.app, case_id, s.actor, Path(path).name, kind, stream)
    out(result, as_json, lambda: f"案件 {case_id}：已添加附件 {result['id']}「{result['name']}」"
                                 f"（{result['size']} 字节，SHA-256 {result['sha256']}）")


@case.command("show")
@click.argument("case_id", type=ROW_ID)
@click.option("--all", "every_timer", is_flag=True, help="List every timer, those a later step cancelled too.")
@json_option
def case_show(case_id: int, every_timer: bool, as_json: bool) -> None:
    """One case: state, deadlines, live timers, what may happen next."""
    from duban.present.workflow_text import case_text

    result = settings().app.show(case_id)
    out(result, as_json, lambda: case_text(result, every_timer=every_timer))


@case.command("history")
@click.argument("case_id", type=ROW_ID)
@json_option
def case_history(case_id: int, as_json: bool) -> None:
    """The audit events of one case (labels here; identifiers with --json)."""
    from duban.present.output import table, timed

    rows = settings().app.history(case_id)
    out(rows, as_json, lambda: table(timed(rows), [
        ("seq", "序号"), ("at", "时间"), ("actor_label", "操作人"), ("role_label", "角色"), ("action_label", "动作"),
        ("trigger_label", "操作"), ("from_state_label", "原状态"), ("to_state_label", "新状态"), ("note", "说明")]))


@case.command("list")
@click.option("--state", help="Only cases in this state, by identifier or label (in_progress or 办理中: every workflow's).")
@click.option("--unit", help="Only cases this unit leads or co-handles (配合).")
@click.option("--workflow", "workflow_name", help="Only cases of this workflow, by name or label (supervision or 督办事项).")
@click.option("--overdue", is_flag=True, default=None, help="Only cases with a missed deadline.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="table for people, json for scripts, csv for Excel (Chinese headers, a BOM).")
@json_option
def case_list(state: str | None, unit: str | None, workflow_name: str | None, overdue: bool | None, fmt: str,
              as_json: bool) -> None:
    """List cases."""
    from duban.present.output import emit_json, table, timed, to_csv

    rows = settings().app.list_cases(state=state, unit=unit, workflow=workflow_name, overdue=overdue)
    if fmt == "json" or wants_json(as_json):
        emit_json(rows)
    elif fmt == "csv":
        click.echo(to_csv(timed(rows), CASE_COLUMNS), nl=False)
    else:
        click.echo(table(timed(rows), CASE_COLUMNS))


# -- timers and notices -----------------------------------------------------------------
@cli.command()
@json_option
def tick(as_json: bool) -> None:
    """Fire every timer due up to now (idempotent); prints what fired."""
    result = settings().app.tick()
    out({"fired_timers": result.fired_timers, "lines": result.lines}, as_json,
        lambda: "\n".join(result.lines) or "没有到期的计时器")


@cli.group()
def notice() -> None:
    """The notices outbox."""


@notice.command("list")
@click.option("--unit", help="Only notices to this unit.")
@click.option("--case", "case_id", type=ROW_ID, help="Only notices of this case.")
@json_option
def notice_list(unit: str | None, case_id: int | None, as_json: bool) -> None:
    """Notices sent by the escalation ladder."""
    from duban.delivery.status import with_deliveries
    from duban.present.output import table, timed

    app = settings().app
    rows = with_deliveries(app, app.notices(unit=unit, case_id=case_id))  # adds `deliveries` and the 送达 cell
    if not wants_json(as_json):  # 已读 cell: who read it (标为已读 on the board), or 未读
        rows = [{**r, "read": "、".join(x["reader"] for x in r["read_by"]) or "未读"} for r in rows]
    out(rows, as_json, lambda: table(timed(rows), [
        ("id", "编号"), ("created_at", "时间"), ("case_id", "案件"), ("kind", "类型"), ("recipient_label", "发送对象"),
        ("level_label", "级别"), ("title", "标题"), ("delivery", "送达"), ("read", "已读")]))


@notice.command("print")
@click.argument("notice_id", type=ROW_ID)
@click.option("--out", "path", required=True, type=click.Path(dir_okay=False), help="The PDF file to write.")
@json_option
def notice_print(notice_id: int, path: str, as_json: bool) -> None:
    """The 督办通知书 / 催办通知书 as a PDF, with its office number (督办〔2027〕12号, kept on reprint)."""
    from duban.commands.notify import print_notice

    print_notice(notice_id, path, as_json)


# -- audit ------------------------------------------------------------------------------
@cli.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@click.option("--file", "file", type=click.Path(dir_okay=False),
              help="Check an exported file against its manifest instead, offline (no database).")
@click.option("--jobs", type=click.IntRange(min=1),
              help="Worker processes checking ranges of the chain in parallel (default: one per CPU; "
                   "1 checks in this process, as do chains under 50,000 events). Events appended "
                   "after the check began are not checked.")
@click.option("--pubkey", type=click.Path(dir_okay=False),
              help="The office's public key (office.pub): check every checkpoint's signature, and that the "
                   "log (or the --file export) still has each signed Merkle root.")
@click.option("--checkpoint", "checkpoint_files", multiple=True, type=click.Path(dir_okay=False),
              help="A checkpoint file (as mailed to the inspectors) to hold the log to as well; repeatable. "
                   "Needs --pubkey.")
@click.option("--bundle", type=click.Path(dir_okay=False),
              help="Check a proof bundle (audit prove) offline with --pubkey, no database.")
@click.option("--state", is_flag=True,
              help="Also replay every case from its events and compare with the stored case, timer and notice "
                   "rows, and the users with the directory's events.")
@json_option
def audit_verify(file: str | None, jobs: int | None, pubkey: str | None, checkpoint_files: tuple[str, ...],
                 bundle: str | None, state: bool, as_json: bool) -> None:
    """Recompute the hash chain (or an export's) and check it against the signed checkpoints;
    exit 6 naming the first event or checkpoint that does not match."""
    if file is not None:
        from duban.commands.reports import run_verify_file

        run_verify_file(file, as_json, pubkey=pubkey, checkpoint_files=checkpoint_files)
        return
    from duban.commands.audit import run_verify

    run_verify(pubkey, checkpoint_files, bundle, state, jobs, as_json)


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "xlsx"]), required=True,
              help="csv or xlsx for people (labels beside identifiers, Excel-safe cells); jsonl re-verifies offline.")
@click.option("--out", "path", required=True, type=click.Path(dir_okay=False), help="The file; FILE.manifest.json goes beside it.")
@click.option("--case", "case_id", type=ROW_ID, help="Only this case's events.")
@click.option("--unit", help="Only events of cases this unit leads or co-handles.")
@click.option("--workflow", "workflow_name", help="Only events of this workflow's cases.")
@click.option("--since", help="From this instant (ISO date or datetime, office zone).")
@click.option("--until", help="Before this instant; a bare date includes that whole day.")
@click.option("--jobs", type=click.IntRange(min=1),
              help="Worker processes for a large CSV or JSONL export (default: one per CPU; 1: this process only). "
                   "The file is the same either way.")
@json_option
def audit_export(fmt: str, path: str, case_id: int | None, unit: str | None, workflow_name: str | None,
                 since: str | None, until: str | None, jobs: int | None, as_json: bool) -> None:
    """Export audit events with a manifest (streamed; written under a temporary name, then renamed)."""
    from duban.commands.reports import run_export

    run_export(fmt, path, case_id, unit, workflow_name, since, until, as_json, jobs)


# -- calendar ---------------------------------------------------------------------------
@cli.group()
def calendar() -> None:
    """The working-day calendar (holidays and make-up working days)."""


@calendar.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def calendar_import(file: str, as_json: bool) -> None:
    """Load a year's schedule (YAML or CSV); recompute approximate deadlines it covers."""
    r = settings().app.import_calendar(file)
    kind = "" if r["official"] else " as local overrides (a CSV does not make a year's schedule known)"
    out(r, as_json, lambda: f"imported {r['days']} days for {', '.join(map(str, r['years']))}{kind} ({r['source']}); "
        f"recomputed deadlines of {len(r['recomputed_cases'])} case(s)")


@calendar.command("show")
@click.argument("year", type=int)
@json_option
def calendar_show(year: int, as_json: bool) -> None:
    """Holidays and make-up working days of a year."""
    from duban.present.output import table

    r = settings().app.calendar(year)

    def human() -> str:
        if not r["known"]:
            return f"{year}: no official schedule loaded — deadlines count weekends only and are marked approximate"
        return f"{year} ({r['source']})\n" + table(r["days"], [("date", "日期"), ("kind_label", "类型"), ("name", "名称")])

    out(r, as_json, human)


# -- demo -------------------------------------------------------------------------------
@cli.command()
@click.option("--serve", "then_serve", is_flag=True,
              help="Then start the board on what it built (duban serve, as of the demo's last day, plain HTTP).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="With --serve: the port of the board on 127.0.0.1.")
@json_option
@click.pass_context
def demo(ctx: click.Context, then_serve: bool, port: int, as_json: bool) -> None:
    """Build a sample from the seed notices and run the clock forward through months."""
    from duban.commands.demo import run_demo

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


# -- commands defined in their own modules (each registers itself here) ------------------
from duban.commands.reports import report  # noqa: E402

cli.add_command(report)

from duban.commands.scheduler import scheduler  # noqa: E402

cli.add_command(scheduler)

from duban.commands.audit import checkpoint, keygen, prove  # noqa: E402

for _command in (keygen, checkpoint, prove):
    audit.add_command(_command)

from duban.commands.notify import notify  # noqa: E402

cli.add_command(notify)

from duban.commands.serve import serve  # noqa: E402

cli.add_command(serve)

from duban.commands.access import token, user_commands  # noqa: E402

cli.add_command(token)
for _command in user_commands:
    user.add_command(_command)


def main() -> None:
    cli(prog_name="duban", auto_envvar_prefix=None)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    main()

