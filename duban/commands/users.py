"""`duban user add | list` and the operator's sign-in commands on users (`duban.commands.access`):
the directory of who may act, in which role and unit.

Only click is imported at module level (`duban --help` starts fast).
"""

from __future__ import annotations

import click

from duban.commands.access import user_commands
from duban.commands.support import json_option, out, settings


@click.group()
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


for _command in user_commands:  # passwd, disable, enable, totp
    user.add_command(_command)
