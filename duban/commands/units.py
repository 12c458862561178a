"""`duban unit add | list | rename`: the unit directory (单位名录).

Only click is imported at module level (`duban --help` starts fast).
"""

from __future__ import annotations

import click

from duban.commands.support import json_option, out, settings


@click.group()
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
