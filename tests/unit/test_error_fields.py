"""Engine errors carry the field they are about (issue 12): the engine's messages name fields
as the API does, and the CLI prints each by its option — word for word what it printed when
the engine wrote the option itself."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import duban.engine
from duban.commands.flags import FLAGS, cli_message, flag
from duban.engine.calendar import WorkingCalendar
from duban.engine.service import Actor, Engine
from duban.engine.wording import joined
from duban.errors import DefinitionError, DubanError, FieldRef, GuardRejectedError, UsageError
from duban.workflows import SHIPPED_DIR, load_file

ENGINE = Path(duban.engine.__file__).parent
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)
WANG, LI = Actor("wang", "office"), Actor("li", "leader")


def _string_constants(tree: ast.AST) -> list[str]:
    """Every string literal of a module but its docstrings (a docstring may well say `--due`)."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings]


def _field_refs(tree: ast.AST) -> list[str]:
    """The field each ``FieldRef(...)`` of a module names (``data.KEY`` for an f-string)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "FieldRef":
            arg = node.args[0]
            found.append(str(arg.value) if isinstance(arg, ast.Constant) else "data.KEY")
    return found


@pytest.fixture(scope="module")
def engine_trees() -> dict[str, ast.AST]:
    return {str(p.relative_to(ENGINE)): ast.parse(p.read_text(encoding="utf-8")) for p in sorted(ENGINE.rglob("*.py"))}


class TestTheEngineNamesNoOption:
    def test_no_string_of_the_engine_spells_a_cli_option(self, engine_trees: dict[str, ast.AST]) -> None:
        """No message text in duban/engine writes `--title`, `--set` …: the entry point names its own options."""
        offenders = [f"{name}: {text!r}" for name, tree in engine_trees.items()
                     for text in _string_constants(tree) if re.search(r"--[a-z]", text)]
        assert offenders == []

    def test_every_field_the_engine_names_has_an_option(self, engine_trees: dict[str, ast.AST]) -> None:
        """Each field a message names maps to a CLI option, so no CLI message shows an API name instead."""
        named = {f for tree in engine_trees.values() for f in _field_refs(tree)}
        assert named >= {"title", "lead_unit", "due", "note", "data.KEY"}
        assert all(flag(f).startswith("--") for f in named), {f: flag(f) for f in named}
        assert set(FLAGS) >= {f for f in named if not f.startswith("data.")}


class TestRendering:
    def test_a_field_is_named_in_words_and_by_its_option(self) -> None:
        """The message names the field as the API does; the CLI prints its option in the same place."""
        exc = UsageError(FieldRef("lead_unit"), " (the lead unit) must not be empty")
        assert str(exc) == "lead_unit (the lead unit) must not be empty"
        assert exc.field == "lead_unit"
        assert cli_message(exc) == "--unit (the lead unit) must not be empty"

    def test_a_data_value_is_its_key_and_set_on_the_cli(self) -> None:
        """A value of the case's data: ``until=…`` in words, ``--set until=…`` on the command line."""
        exc = UsageError(FieldRef("data.until"), "=soon: give a date")
        assert (str(exc), exc.field, cli_message(exc)) == ("until=soon: give a date", "data.until",
                                                           "--set until=soon: give a date")

    def test_what_a_user_typed_is_never_taken_for_a_field(self) -> None:
        """Text that looks like a placeholder stays as typed: the message is kept as pieces, not a template."""
        exc = UsageError(FieldRef("report"), " {flag} {report}: allowed: monthly:5")
        assert cli_message(exc) == "--report {flag} {report}: allowed: monthly:5"

    def test_an_explicit_field_wins_and_plain_errors_have_none(self) -> None:
        """`field=` says what the error is about even when the message names another; a plain message has no field."""
        assert UsageError("workflow 'x' needs ", FieldRef("due"), field="milestones").field == "milestones"
        plain = UsageError("no such thing")
        assert (plain.field, str(plain), cli_message(plain)) == (None, "no such thing", "no such thing")

    def test_an_error_not_made_of_pieces_prints_as_it_is(self) -> None:
        """A subclass that sets its message by itself still prints it, with no field."""
        class Odd(DubanError):
            def __init__(self) -> None:
                Exception.__init__(self, "odd --set")

        assert (cli_message(Odd()), Odd().field) == ("odd --set", None)

    def test_a_definition_error_keeps_its_shape(self) -> None:
        """file: path: reason, with the reason's field named by option on the CLI."""
        exc = DefinitionError("wf.yaml", "deadlines.due.rule", "a fixed date belongs on the case (", FieldRef("due"),
                              "), use rule: from_case")
        assert str(exc) == "wf.yaml: deadlines.due.rule: a fixed date belongs on the case (due), use rule: from_case"
        assert exc.reason == "a fixed date belongs on the case (due), use rule: from_case"
        assert cli_message(exc).endswith("(--due), use rule: from_case")


class TestFromTheEngine:
    @pytest.fixture
    def engine(self) -> Engine:
        return Engine(WorkingCalendar.from_days([], []), TZ)  # weekends only: enough to open a case

    def test_opening_without_a_due_date_names_the_due_field(self, engine: Engine) -> None:
        """A workflow that needs a due date refuses a case without one, about field `due`."""
        wf = load_file(SHIPPED_DIR / "supervision.yaml")
        with pytest.raises(UsageError) as caught:
            engine.open_case(wf, title="t", lead_unit="区发改局", co_units=[], due=None, values={}, actor=WANG, now=NOW)
        assert caught.value.field == "due"
        assert cli_message(caught.value) == "workflow 'supervision' needs --due (e.g. 2027-05-31, 15wd, 3mo, 5h)"

    def test_a_guard_names_the_field_it_wants(self, engine: Engine) -> None:
        """问责 without a measure is about `data.measure`, then without a reason about `note`, each by its option."""
        wf = load_file(SHIPPED_DIR / "supervision.yaml")
        case = engine.open_case(wf, title="t", lead_unit="区发改局", co_units=[], due="5wd", values={}, actor=WANG,
                                now=NOW).case
        case.id, case.state = 1, "overdue"
        with pytest.raises(GuardRejectedError) as no_measure:
            engine.fire(wf, case, "hold_accountable", actor=LI, now=NOW)
        assert no_measure.value.field == "data.measure"
        assert str(no_measure.value).startswith("'hold_accountable' needs a measure: measure=… (allowed: 诫勉谈话")
        assert cli_message(no_measure.value).startswith("'hold_accountable' needs a measure: --set measure=… (allowed:")
        with pytest.raises(GuardRejectedError) as no_note:
            engine.fire(wf, case, "hold_accountable", actor=LI, values={"measure": "诫勉谈话"}, now=NOW)
        assert (no_note.value.field, str(no_note.value), cli_message(no_note.value)) == (
            "note", "'hold_accountable' needs a note saying why (note TEXT)",
            "'hold_accountable' needs a note saying why (--note TEXT)")

    def test_failures_joined_keep_each_field(self) -> None:
        """Several failed guards read as one message naming each field; the error is about the first."""
        exc = GuardRejectedError("note_required", *joined([("'x' needs a note (", FieldRef("note"), " TEXT)"),
                                                           ("'x' needs ", FieldRef("data.satisfied"), "=yes|no")]))
        assert exc.field == "note"
        assert cli_message(exc) == "'x' needs a note (--note TEXT); 'x' needs --set satisfied=yes|no"
