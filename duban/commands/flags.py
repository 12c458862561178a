"""The CLI's name for each input field an error names (`duban.errors.FieldRef`).

The engine and the service name fields as the API does (``lead_unit``, ``data.until``); a
person at the command line gave them as options, so the message they read names the option
(``--unit``, ``--set until``) — word for word what they would type again.
"""

from __future__ import annotations

from duban.errors import DubanError

FLAGS = {
    "title": "--title", "lead_unit": "--unit", "co_units": "--co-unit", "due": "--due",
    "milestones": "--milestone", "report": "--report", "note": "--note", "data": "--set",
}


def flag(field: str) -> str:
    """The option that gives ``field``: ``data.KEY`` is ``--set KEY`` (its ``=VALUE`` follows)."""
    if field.startswith("data."):
        return f"{FLAGS['data']} {field.removeprefix('data.')}"
    return FLAGS.get(field, field)


def cli_message(exc: DubanError) -> str:
    """The error's message as the command line says it: each field it names, by its option."""
    return exc.render(flag)
