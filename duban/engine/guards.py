"""The allow-list of guards a workflow file may name.

Workflow files name guards by key; nothing else is callable from a file (transitions
would otherwise import any dotted path it is given). A guard looks at the attempt and
returns None when it passes, or a message saying what is missing and what is allowed (its
pieces, naming the fields with `FieldRef`, so each entry point names them its own way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from duban.errors import FieldRef, Part

# 问责方式 an office may record (SPEC §2; DOMAIN §6).
MEASURES: tuple[str, ...] = ("诫勉谈话", "通报批评", "效能告诫", "取消评优资格", "组织调整")


@dataclass
class Attempt:
    """What a guard may look at: who fires which trigger on which case, with what."""

    case: Any
    trigger: str
    actor: str
    role: str
    note: str = ""
    values: Mapping[str, str] = field(default_factory=dict)
    failures: list[tuple[str, Message]] = field(default_factory=list)
    taken: int | None = None  # index of the transition the machine took


Message = tuple[Part, ...]
Guard = Callable[[Attempt], Message | None]


def _note_required(a: Attempt) -> Message | None:
    if a.note.strip():
        return None
    return f"'{a.trigger}' needs a note saying why (", FieldRef("note"), " TEXT)"


def _measure_required(a: Attempt) -> Message | None:
    measure = a.values.get("measure", "").strip()
    if measure in MEASURES:
        return None
    if not measure:
        return f"'{a.trigger}' needs a measure: ", FieldRef("data.measure"), f"=… (allowed: {', '.join(MEASURES)})"
    return (f"unknown measure '{measure}' (allowed: {', '.join(MEASURES)})",)


def _yes_no(value: str) -> bool | None:
    v = value.strip().lower()
    if v in ("yes", "true", "1", "是", "满意"):
        return True
    if v in ("no", "false", "0", "否", "不满意"):
        return False
    return None


def _satisfied_given(a: Attempt) -> Message | None:
    if _yes_no(a.values.get("satisfied", "")) is None:
        return f"'{a.trigger}' needs ", FieldRef("data.satisfied"), "=yes|no"
    return None


def _satisfied(a: Attempt) -> Message | None:
    return _satisfied_given(a) or (None if _yes_no(a.values["satisfied"]) else ("the answer is not 'yes'",))


def _unsatisfied(a: Attempt) -> Message | None:
    return _satisfied_given(a) or (None if not _yes_no(a.values["satisfied"]) else ("the answer is not 'no'",))


def _first_reopen(a: Attempt) -> Message | None:
    return None if a.case.data.get("reopened") != "yes" else ("the case was already reopened once",)


def _already_reopened(a: Attempt) -> Message | None:
    return None if a.case.data.get("reopened") == "yes" else ("the case has not been reopened yet",)


def _open_milestone(a: Attempt) -> Message | None:
    number = a.values.get("milestone", "").strip()
    running = sorted(name.removeprefix("milestone_") for name, d in a.case.deadlines.items()
                     if name.startswith("milestone_") and d.status == "running")
    if number in running:
        return None
    return (f"'{a.trigger}' needs ", FieldRef("data.milestone"),
            f"=N of an open milestone (open: {', '.join(running) or 'none'})")


GUARDS: Mapping[str, Guard] = {
    "note_required": _note_required,
    "measure_required": _measure_required,
    "satisfied_given": _satisfied_given,
    "satisfied": _satisfied,
    "unsatisfied": _unsatisfied,
    "first_reopen": _first_reopen,
    "already_reopened": _already_reopened,
    "open_milestone": _open_milestone,
}
