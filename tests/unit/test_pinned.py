"""A pinned definition read back without validating it again (`duban.engine.pinned`) answers
exactly as the validated spec does, and a workflow's allowed triggers need no state machine."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel

from duban.engine import definition
from duban.engine.pinned import DEFAULTS, KEYED, NESTED, PinnedWorkflow
from duban.engine.workflow import MILESTONE_PREFIX, PROGRESS, Workflow
from duban.workflows import Catalog

MODELS: list[type[BaseModel]] = [definition.WorkflowSpec, *dict.fromkeys(definition._MODEL_BY_KEY.values())]
# an office's settings file: an override-derived definition (overrides key, changed rule and ladder) is pinned too
SETTINGS = """workflows:
  complaint:
    deadlines:
      reply: {rule: 3wd}
"""
DATA = {"milestones": [{"due": "2026-04-30", "title": "完成方案编制"}, {"due": "2026-06-30", "title": "项目开工"}],
        "report_schedule": "monthly:5"}


def shipped(tmp_path_factory: pytest.TempPathFactory) -> list[Workflow]:
    settings = tmp_path_factory.mktemp("settings") / "settings.yaml"
    settings.write_text(SETTINGS, encoding="utf-8")
    return Catalog(settings=str(settings)).all()


@pytest.fixture(scope="module")
def workflows(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Workflow, Workflow]]:
    """(validated, pinned) for every shipped definition and an override-derived one."""
    found = shipped(tmp_path_factory)
    assert any(wf.spec.overrides for wf in found)
    return [(wf, PinnedWorkflow.read(wf.raw, wf.source)) for wf in found]


def same(valid: Any, read: Any, where: str) -> None:
    """`read` shows every field of `valid` (a spec model, or what its fields hold) with equal values."""
    if isinstance(valid, BaseModel):
        for name in type(valid).model_fields:
            same(getattr(valid, name), getattr(read, name), f"{where}.{name}")
    elif isinstance(valid, dict):
        assert list(valid) == list(read), where
        for key in valid:
            same(valid[key], read[key], f"{where}.{key}")
    elif isinstance(valid, list):
        assert len(valid) == len(read), where
        for i, (v, r) in enumerate(zip(valid, read, strict=True)):
            same(v, r, f"{where}[{i}]")
    else:
        assert (type(read), read) == (type(valid), valid), where


class TestSchema:
    @pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
    def test_defaults_are_the_schemas(self, model: type[BaseModel]) -> None:
        """DEFAULTS holds each model's defaults, and only for the fields that have one."""
        expected = {name: f.get_default(call_default_factory=True) for name, f in model.model_fields.items()
                    if not f.is_required()}
        assert DEFAULTS[model.__name__] == expected

    def test_nesting_is_the_schemas(self) -> None:
        """NESTED names the model under each key as the schema does; KEYED are the mappings by name."""
        assert {key: model.__name__ for key, model in definition._MODEL_BY_KEY.items()} == NESTED
        keyed = {name for model in MODELS for name, f in model.model_fields.items()
                 if name in NESTED and typing.get_origin(f.annotation) is dict}
        assert keyed == KEYED


class TestPinnedReadsAsValidated:
    def test_every_field(self, workflows: list[tuple[Workflow, Workflow]]) -> None:
        """Every field of every definition, defaults included, reads the same."""
        for valid, pinned in workflows:
            same(valid.spec, pinned.spec, valid.source)

    def test_what_a_case_view_asks(self, workflows: list[tuple[Workflow, Workflow]]) -> None:
        """Labels, allowed triggers and their transitions, ladders, offsets and a case's duty deadlines agree."""
        for valid, pinned in workflows:
            assert (pinned.name, pinned.version, pinned.offsets) == (valid.name, valid.version, valid.offsets)
            triggers = list(dict.fromkeys(t.trigger for t in valid.spec.transitions))
            for state in [*valid.spec.states, "no_such_state"]:
                assert pinned.state_label(state) == valid.state_label(state)
                assert pinned.allowed_triggers(state) == valid.allowed_triggers(state)
                for trigger in triggers:
                    same(valid.transitions_from(state, trigger), pinned.transitions_from(state, trigger), state)
            for trigger in [*triggers, "no_such_trigger"]:
                assert pinned.trigger_label(trigger) == valid.trigger_label(trigger)
                same(valid.spec.transition_for(trigger), pinned.spec.transition_for(trigger), trigger)
            for t, p in zip(valid.spec.transitions, pinned.spec.transitions, strict=True):
                assert p.sources == t.sources
            specs = valid.deadline_specs(DATA)
            same(specs, pinned.deadline_specs(DATA), f"{valid.name} deadline_specs")
            for name in [*specs, f"{MILESTONE_PREFIX}1", PROGRESS]:
                if name in valid.spec.deadlines or valid.duty_key(name):
                    same(valid.rungs_of(name), pinned.rungs_of(name), name)
            for name in valid.spec.deadlines:
                same(valid.spec.rungs(name), pinned.spec.rungs(name), name)

    def test_no_pydantic_model_is_built(self, workflows: list[tuple[Workflow, Workflow]]) -> None:
        """Reading a pinned definition, its duty deadlines included, creates no spec model."""
        for _, pinned in workflows:
            assert not isinstance(pinned.spec, BaseModel)
            assert not any(isinstance(s, BaseModel) for s in pinned.deadline_specs(DATA).values())


class TestAllowedTriggers:
    def test_the_transition_table_gives_what_the_machine_gives(self, workflows: list[tuple[Workflow, Workflow]]) -> None:
        """For every state, the triggers read from the transition table are the state machine's, in order."""
        for valid, _ in workflows:
            for state in valid.spec.states:
                possible = set(valid.machine.get_triggers(state))
                expected = list(dict.fromkeys(t.trigger for t in valid.spec.transitions if t.trigger in possible))
                assert valid.allowed_triggers(state) == expected, (valid.name, state)

    def test_the_machine_is_built_on_first_use(self) -> None:
        """Loading a definition builds no state machine; the first use builds one, and keeps it."""
        wf = Catalog().latest("supervision")
        fresh = Workflow.from_raw(wf.raw, wf.source)
        assert "machine" not in vars(fresh)
        assert fresh.machine is fresh.machine
