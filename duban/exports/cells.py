"""Cells of the files an office opens in Excel or WPS, made safe (SPEC §16 "Files the office
opens are safe"; OWASP "CSV Injection").

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula (a tab
or a carriage return in front hides one), so a case title ``=HYPERLINK(…)`` or a note
``=cmd|' /C calc'!A0`` typed by anyone who may open or act on a case would run on the
reviewer's machine. Such a text is written with a leading ``'``: the spreadsheet shows it as
text, and a reader of the file still sees every character that was typed. Only text is
touched; numbers and dates are written as what they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

RISKY = frozenset("=+-@\t\r")
_first = itemgetter(slice(0, 1))  # "" for the empty text, as str[:1]


def defused(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value[:1] in RISKY:
        return "'" + value
    return value


def defused_column(values: Sequence[Any]) -> Sequence[Any]:
    """A column of an export batch, defused; the same sequence when no value needs it (the
    common case, checked at C speed: the set of first characters)."""
    try:
        firsts = set(map(_first, values))
    except TypeError:  # a None or a number in the column: checked value by value
        return [defused(v) for v in values]
    if RISKY.isdisjoint(firsts):
        return values
    return [defused(v) for v in values]
