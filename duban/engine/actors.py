"""Who acts on a case: a user of the directory in a role (and, for a unit user, a unit),
or the scheduler, which alone acts as `system`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who acts: a user of the directory, or the scheduler."""

    name: str
    role: str
    unit: str | None = None


SYSTEM = Actor("system", "system")
HUMAN_ROLES: tuple[str, ...] = ("office", "unit", "leader", "inspector")  # here, not in definition: no pydantic to check a role
