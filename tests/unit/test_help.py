"""Every command and every option of `duban` says what it is for (SPEC §16: "Every command
and option has help text"): a person reading `--help` never meets a bare option name."""

from __future__ import annotations

from collections.abc import Iterator

import click

from duban.cli import cli


def commands(group: click.Group, path: tuple[str, ...] = ("duban",)) -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        where = (*path, name)
        yield " ".join(where), command
        if isinstance(command, click.Group):
            yield from commands(command, where)


def test_every_command_and_option_has_help() -> None:
    """The whole tree, groups included: a command without a docstring or an option without
    `help=` is named here."""
    missing = [] if cli.help else ["duban"]
    missing += [f"duban {o.opts[0]}" for o in cli.params if isinstance(o, click.Option) and not o.help]
    walked = list(commands(cli))
    for where, command in walked:
        if not (command.help or command.short_help):
            missing.append(where)
        missing += [f"{where} {o.opts[0]}" for o in command.params if isinstance(o, click.Option) and not o.help]
    assert len(walked) > 30  # the walk saw the tree, not an empty group
    assert missing == []


def test_case_open_help_lists_the_workflows() -> None:
    """`duban case open --help` names each shipped workflow with its Chinese label."""
    from click.testing import CliRunner

    shown = CliRunner().invoke(cli, ["case", "open", "--help"]).stdout
    for name, label in (("supervision", "督办事项"), ("complaint", "效能投诉"), ("proposal", "建议提案办理")):
        line = next(line for line in shown.splitlines() if line.strip().startswith(name))
        assert label in line


def test_every_command_is_defined_in_its_group_module() -> None:
    """`duban.cli` is the root only: each command and group is defined in a module of `duban.commands`."""
    elsewhere = [where for where, command in commands(cli)
                 if command.callback is None or not command.callback.__module__.startswith("duban.commands.")]
    assert elsewhere == []
