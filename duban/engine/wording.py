"""Pieces of wording several of the engine's refusals share.

A message names the input it is about with `duban.errors.FieldRef`, so the CLI prints its
option there (``--set until``) and the API the field's name (``until``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from duban.errors import FieldRef, Part


def takes(keys: Sequence[str]) -> tuple[Part, ...]:
    """What a step takes as data values, to end "'accept' takes …": the keys, or none."""
    return (", ".join(keys),) if keys else ("no ", FieldRef("data"), " values")


def joined(messages: Iterable[tuple[Part, ...]], separator: str = "; ") -> tuple[Part, ...]:
    """Several messages (e.g. every guard that failed) as one."""
    out: list[Part] = []
    for i, message in enumerate(messages):
        if i:
            out.append(separator)
        out.extend(message)
    return tuple(out)
