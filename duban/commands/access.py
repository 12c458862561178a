"""Sign-in and access on the command line (SPEC §12): `user passwd / disable / enable /
totp` and `token create / list / revoke`. The operator's commands: they take no --actor.

`duban.commands.users` adds the user commands to its `user` group; `duban.cli` registers
`token` at the root. Only click is imported at module level (`duban --help` must start
fast); the service loads inside the commands. A password is read from standard input and
never echoed; a token and a TOTP URI are printed once, on standard output, and nowhere else.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Any

import click

from duban.commands.support import json_option, out, settings

if TYPE_CHECKING:
    from duban.access.service import Access

VIA = "cli"


def _access() -> Access:
    from duban.access.service import Access

    return Access(settings().app)


def on_terminal() -> bool:
    return sys.stdin.isatty()


def read_password() -> str:
    """The new password: asked twice without echo on a terminal; one line when piped."""
    from duban.errors import UsageError

    if on_terminal():
        first = getpass.getpass("新密码（输入时不显示）：")
        if getpass.getpass("再输入一次新密码：") != first:
            raise UsageError("两次输入的密码不一致；未作任何修改")
        return first
    line = sys.stdin.readline()
    if not line:
        raise UsageError("标准输入中没有密码（如：printf '%s\\n' \"$PASSWORD\" | duban user passwd NAME）")
    return line.removesuffix("\n").removesuffix("\r")  # the line's end only: spaces are the password's


@click.command("passwd")
@click.argument("name")
@json_option
def user_passwd(name: str, as_json: bool) -> None:
    """Set a user's password, read from standard input (twice on a terminal; never echoed).

    At least 10 characters from at least 3 of: lower case, upper case, digits, symbols.
    Unlocks the user and ends their board sessions."""
    access = _access()
    r = access.set_password(name, read_password(), via=VIA)
    out(r, as_json, lambda: f"已为用户 {r['user']} 设置密码"
        + (f"（其 {r['sessions_ended']} 个登录会话已结束）" if r["sessions_ended"] else ""))


@click.command("disable")
@click.argument("name")
@json_option
def user_disable(name: str, as_json: bool) -> None:
    """Disable a user: no sign-in, no acting (CLI --actor too); their sessions end, their tokens stop."""
    r = _access().disable(name, via=VIA)
    out(r, as_json, lambda: f"已停用用户 {r['user']}：不能登录、不能操作，令牌暂停使用"
        + (f"，{r['sessions_ended']} 个登录会话已结束" if r["sessions_ended"] else ""))


@click.command("enable")
@click.argument("name")
@json_option
def user_enable(name: str, as_json: bool) -> None:
    """Enable a disabled user again (their unrevoked, unexpired tokens work again)."""
    r = _access().enable(name, via=VIA)
    out(r, as_json, lambda: f"已恢复用户 {r['user']}")


@click.command("totp")
@click.argument("name")
@json_option
def user_totp(name: str, as_json: bool) -> None:
    """Give a user a new TOTP secret (second factor) and print its provisioning URI once.

    From then on the user signs in with a 6-digit code too; a previous secret stops working."""
    r = _access().provision_totp(name, via=VIA)
    out(r, as_json, lambda: f"已为用户 {r['user']} 生成新的动态口令密钥（原有的随即失效）。\n"
        f"请在身份验证器中扫描或输入以下地址（只显示这一次，请勿转发）：\n{r['uri']}")


user_commands = [user_passwd, user_disable, user_enable, user_totp]


# -- tokens -------------------------------------------------------------------------------
@click.group()
def token() -> None:
    """API tokens for integrations: `Authorization: Bearer TOKEN` acts as the token's user."""


@token.command("create")
@click.argument("name")
@click.option("--label", help="What the token is for (e.g. 12345 热线对接).")
@click.option("--expires", default="90d", show_default=True, help="Lifetime in days (e.g. 30d), or never.")
@json_option
def token_create(name: str, label: str | None, expires: str, as_json: bool) -> None:
    """Make a token for a user and print it once (only its hash is stored)."""
    r = _access().create_token(name, label=label, expires=expires, via=VIA)
    until = _shown(r["expires_at"]) or "永不过期"
    out(r, as_json, lambda: f"已为用户 {r['user']} 创建令牌 #{r['id']}"
        + (f"（{r['label']}）" if r["label"] else "") + f"，有效期至 {until}：\n{r['token']}\n"
        "令牌只显示这一次，请立即妥善保存；遗失请撤销后重新创建（duban token revoke 编号）。")


@token.command("list")
@click.argument("name", required=False)
@json_option
def token_list(name: str | None, as_json: bool) -> None:
    """The tokens (of one user), with their status; never the tokens themselves."""
    from duban.present.output import table

    rows = _access().tokens(name)
    shown = [{**r, **{k: _shown(r[k]) for k in ("created_at", "expires_at", "last_used_at")}} for r in rows]
    out(rows, as_json, lambda: table(shown, [
        ("id", "编号"), ("user", "用户"), ("label", "标签"), ("status_label", "状态"),
        ("created_at", "创建时间"), ("expires_at", "到期时间"), ("last_used_at", "最近使用")]))


@token.command("revoke")
@click.argument("number", metavar="ID", type=int)
@json_option
def token_revoke(number: int, as_json: bool) -> None:
    """Revoke a token by its number (from token list): it stops working at once."""
    r = _access().revoke_token(number, via=VIA)
    out(r, as_json, lambda: f"已撤销令牌 #{r['id']}（用户 {r['user']}），立即失效")


def _shown(at: Any) -> str | None:
    """An ISO instant as people read it: 2027-03-01 09:30."""
    return str(at)[:16].replace("T", " ") if at else None
