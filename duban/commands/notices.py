"""`duban notice list | print`: the notices the escalation ladders sent (the outbox), and a
notice printed as the office's numbered PDF.

Only click is imported at module level (`duban --help` starts fast).
"""

from __future__ import annotations

import click

from duban.commands.support import ROW_ID, json_option, out, settings, wants_json


@click.group()
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
    from duban.delivery.pdf import print_notice

    result = print_notice(settings().app, notice_id, path)
    out(result, as_json, lambda: f"{result['number']} {result['title']} → {result['file']}")
