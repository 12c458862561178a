"""Errors raised by duban, each mapped to one exit code of SPEC §8.

DubanError                      exit 1  anything unexpected
├── UsageError                  exit 2  a bad option, argument or value (--due, --now, --set …)
├── DefinitionError             exit 4  a bad workflow file (file, path inside it, reason)
├── NotFoundError               exit 3  unknown case, workflow, user
├── RefusedError                exit 4  an expected refusal: audited outcome, not a bug
│   ├── TransitionNotAllowedError       .case_id .trigger .state .allowed
│   ├── GuardRejectedError              .guard
│   └── PermissionDeniedError
├── ConcurrencyError            exit 5  the case changed underneath (optimistic version)
├── IntegrityError              exit 6  the audit chain does not verify
└── StorageError                exit 1  database errors translated at the storage boundary

The CLI maps these to exit codes in one place (`exit_code`); every other layer only raises.

An error about one field of the input carries it (`field`, named as the API's request body
names it: ``title``, ``lead_unit``, ``due``, ``note``, ``data.until`` …), and its message
marks where it names a field with a `FieldRef` instead of spelling out a CLI option:
``UsageError(FieldRef("title"), " must not be empty")`` reads "title must not be empty",
and the CLI prints "--title must not be empty" (`duban.commands.flags`). The message is
kept as its pieces, so a value a user typed is never mistaken for a field's mark.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldRef:
    """Where a message names a field of the input: each entry point says it its own way."""

    name: str  # as the API names it; ``data.KEY`` is a value of the case's data

    def __str__(self) -> str:
        return self.name.removeprefix("data.")


Part = str | FieldRef


class DubanError(Exception):
    """Base of every error duban raises on purpose.

    Attributes:
        field: the input field the error is about (the first one its message names, unless
            given), or None.
        parts: the message as text and `FieldRef` pieces (`render` names the fields).
    """

    exit_code = 1
    parts: tuple[Part, ...] = ()
    field: str | None = None

    def __init__(self, *message: Part, field: str | None = None) -> None:
        self.parts = message
        named = next((p.name for p in message if isinstance(p, FieldRef)), None)
        self.field = field if field is not None else named
        super().__init__("".join(map(str, message)))

    def render(self, name: Callable[[str], str]) -> str:
        """The message with each field it names written as ``name(field)`` (a CLI option …);
        the plain message when it was not made of pieces (a subclass that sets its own)."""
        if not self.parts:
            return str(self)
        return "".join(p if isinstance(p, str) else name(p.name) for p in self.parts)


class UsageError(DubanError):
    """A value given on the command line (or in a file) is malformed."""

    exit_code = 2


class NotFoundError(DubanError):
    """A case, workflow or user that does not exist."""

    exit_code = 3


class DefinitionError(DubanError):
    """A workflow definition (or settings file) that cannot be used.

    Attributes:
        file: the file it came from.
        path: where inside the file, e.g. ``transitions[2].roles``.
        reason: what is wrong and what would be allowed.
    """

    exit_code = 4

    def __init__(self, file: str, path: str, *reason: Part) -> None:
        self.file, self.path, self.reason = file, path, "".join(map(str, reason))
        where = f"{file}: {path}" if path else file
        super().__init__(f"{where}: ", *reason)


class RefusedError(DubanError):
    """The command is well-formed but the rules refuse it."""

    exit_code = 4


class TransitionNotAllowedError(RefusedError):
    """The trigger is not allowed in the case's current state."""

    def __init__(self, case_id: int, trigger: str, state: str, allowed: Sequence[str]) -> None:
        self.case_id, self.trigger, self.state, self.allowed = case_id, trigger, state, list(allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none (the case is closed)"
        super().__init__(
            f"case {case_id}: trigger '{trigger}' is not allowed in state '{state}'; "
            f"allowed: {allowed_text}"
        )


class GuardRejectedError(RefusedError):
    """A guard of the transition failed (e.g. a required note is missing)."""

    def __init__(self, guard: str, *message: Part) -> None:
        self.guard = guard
        super().__init__(*message)


class PermissionDeniedError(RefusedError):
    """The actor's role or unit may not fire this trigger on this case."""


class ConcurrencyError(DubanError):
    """The case changed underneath (optimistic version clash); safe to retry."""

    exit_code = 5


class IntegrityError(DubanError):
    """The audit chain (or an exported file) does not verify."""

    exit_code = 6


class StorageError(DubanError):
    """The database could not be used (path not writable, server down …)."""

    exit_code = 1
