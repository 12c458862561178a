"""`duban case open | fire | attach | show | history | list`: a case's life at the command line.

Only click is imported at module level (`duban --help` and `case show` start fast, README
"Performance"); what a command prints with loads inside it.
"""

from __future__ import annotations

import click

from duban.commands.support import ROW_ID, WorkflowArgument, json_option, out, settings, wants_json
from duban.errors import UsageError

CASE_COLUMNS = [
    ("id", "编号"), ("workflow_label", "流程"), ("state_label", "状态"), ("title", "标题"),
    ("lead_unit", "牵头单位"), ("due_at", "办结时限"), ("escalation_label", "预警级别"), ("overdue", "超期"),
    ("was_overdue", "曾超期"),  # a deadline was missed, even if the case has closed since (SPEC §16)
]


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


@click.group()
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
@click.option("--limit", type=click.IntRange(1, 10_000), help="At most N cases (a page, in id order).")
@click.option("--after", type=ROW_ID, help="Only cases after this id (the next page: the last id shown).")
@json_option
def case_list(state: str | None, unit: str | None, workflow_name: str | None, overdue: bool | None, fmt: str,
              limit: int | None, after: int | None, as_json: bool) -> None:
    """List cases (every match, or with --limit / --after a page of them, in id order)."""
    from duban.present.output import emit_json, table, timed, to_csv

    rows = settings().app.list_cases(state=state, unit=unit, workflow=workflow_name, overdue=overdue,
                                     after=after, limit=limit)
    if limit is not None and len(rows) == limit:  # said on stderr: stdout stays the list itself
        click.echo(f"下一页：--after {rows[-1]['id']} --limit {limit}", err=True)
    if fmt == "json" or wants_json(as_json):
        emit_json(rows)
    elif fmt == "csv":
        click.echo(to_csv(timed(rows), CASE_COLUMNS), nl=False)
    else:
        click.echo(table(timed(rows), CASE_COLUMNS))
