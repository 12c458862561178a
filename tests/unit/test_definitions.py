"""Workflow definitions: the shipped files are sound, and every bad file is refused with
the file, the path inside it and the reason (SPEC §4, last paragraph)."""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from duban.engine.definition import WorkflowSpec
from duban.engine.workflow import Workflow
from duban.errors import DefinitionError
from duban.workflows import SHIPPED_DIR, Catalog, load_file

DATA = Path(__file__).parent / "data"
SHIPPED = sorted(SHIPPED_DIR.glob("*.yaml"))


def successors(spec: WorkflowSpec) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {s: set() for s in spec.states}
    for t in spec.transitions:
        for src in t.sources:
            edges[src].add(t.dest)
    return edges


def reachable_from(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        for nxt in edges[queue.popleft()] - seen:
            seen.add(nxt)
            queue.append(nxt)
    return seen


@pytest.fixture(params=SHIPPED, ids=lambda p: p.name)
def shipped(request: pytest.FixtureRequest) -> Workflow:
    return load_file(request.param)


class TestShippedWorkflows:
    def test_there_is_at_least_the_supervision_file(self) -> None:
        """The package ships its workflows as data files, supervision.yaml among them."""
        assert "supervision.yaml" in [p.name for p in SHIPPED]

    def test_every_file_loads(self, shipped: Workflow) -> None:
        """Each shipped file validates and names its own workflow with a label."""
        assert shipped.name and shipped.version >= 1 and shipped.spec.label

    def test_every_state_is_reachable(self, shipped: Workflow) -> None:
        """No state of a shipped workflow is dead: each can be reached from the initial state."""
        spec = shipped.spec
        assert reachable_from(successors(spec), spec.initial) == set(spec.states)

    def test_every_open_state_can_close(self, shipped: Workflow) -> None:
        """From every non-final state some path leads to a final state, so no case is stuck forever."""
        spec = shipped.spec
        edges = successors(spec)
        finals = {s for s, st in spec.states.items() if st.final}
        assert finals
        stuck = [s for s in spec.states if s not in finals and not reachable_from(edges, s) & finals]
        assert stuck == []

    def test_every_timer_fires_something(self, shipped: Workflow) -> None:
        """Each rung of each deadline's ladder escalates, fires a trigger or sends a notice."""
        spec = shipped.spec
        for name in spec.deadlines:
            for rung in spec.rungs(name):
                assert rung.level is not None or rung.trigger is not None or rung.notice is not None, (name, rung)

    def test_every_timer_trigger_can_fire(self, shipped: Workflow) -> None:
        """A rung's trigger is a system transition leaving one of the states its deadline runs in."""
        spec = shipped.spec
        for name, deadline in spec.deadlines.items():
            for rung in spec.rungs(name):
                if rung.trigger is None:
                    continue
                sources = {s for t in spec.transition_for(rung.trigger) if "system" in t.roles for s in t.sources}
                assert sources & set(deadline.running_in), (name, rung.trigger)

    def test_every_state_and_trigger_has_a_chinese_label(self, shipped: Workflow) -> None:
        """The CLI and exports show Chinese labels, so none may be empty or plain ASCII."""
        labels = [st.label for st in shipped.spec.states.values()] + [t.label for t in shipped.spec.transitions]
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in label) for label in labels), labels

    def test_catalog_offers_every_shipped_workflow(self) -> None:
        """`duban workflow list` can read every shipped file together without a version clash."""
        names = Catalog([SHIPPED_DIR]).names()
        assert set(names) == {load_file(p).name for p in SHIPPED}
        assert "supervision" in names


class TestSupervisionContract:
    def test_states_and_triggers_keep_their_contract_names(self) -> None:
        """SPEC §4.1: other offices' scripts rely on these identifiers."""
        spec = Catalog([SHIPPED_DIR]).latest("supervision").spec
        assert {"assigned", "in_progress", "reported", "verified", "overdue", "accountability"} <= set(spec.states)
        assert spec.initial == "assigned"
        assert spec.states["verified"].final and spec.states["accountability"].final
        triggers = {t.trigger for t in spec.transitions}
        assert {"accept", "report", "verify", "reject", "expire", "hold_accountable"} <= triggers

    def test_roles_follow_the_spec(self) -> None:
        """SPEC §4.1: units accept and report, the office verifies and rejects, only the system expires."""
        spec = Catalog([SHIPPED_DIR]).latest("supervision").spec
        roles = {t.trigger: set(t.roles) for t in spec.transitions}
        assert roles["accept"] == {"unit"} and roles["report"] == {"unit"}
        assert roles["verify"] == {"office"} and roles["reject"] == {"office"}
        assert roles["expire"] == {"system"}
        assert roles["hold_accountable"] == {"office", "leader"}
        assert "note_required" in next(t for t in spec.transitions if t.trigger == "reject").guards


# -- validation: every rule of duban/engine/definition.py ----------------------------

BASE: dict[str, Any] = {
    "name": "mini",
    "version": 1,
    "label": "最小流程",
    "initial": "open",
    "main_deadline": "due",
    "states": {
        "open": {"label": "办理中"},
        "late": {"label": "已超期"},
        "done": {"label": "已办结", "final": True},
    },
    "transitions": [
        {"trigger": "finish", "label": "办结", "source": ["open", "late"], "dest": "done", "roles": ["unit"],
         "guards": ["note_required"]},
        {"trigger": "expire", "label": "超期", "source": "open", "dest": "late", "roles": ["system"]},
    ],
    "deadlines": {
        "due": {"label": "办结时限", "rule": "from_case", "anchor": "opened", "running_in": ["open", "late"],
                "ladder": "standard"},
        "sign": {"label": "签收时限", "rule": "1wd", "running_in": ["open"],
                 "ladder": [{"at": "0", "label": "催签", "notice": {"kind": "催办通知", "to": ["lead_unit"]}}]},
    },
    "ladders": {
        "standard": [
            {"at": "-1wd", "level": 1, "label": "黄牌预警", "notice": {"kind": "预警提醒", "to": ["lead_unit"]}},
            {"at": "0", "level": 2, "label": "红牌超期", "trigger": "expire"},
        ],
    },
}


def write(tmp_path: Path, raw: Any) -> Path:
    path = tmp_path / "office-workflow.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


Mutation = Callable[[dict[str, Any]], Any]


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting BASE[a][b]... = value, with list indexes written as numbers."""

    def apply(raw: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
        node: Any = raw
        for p in parents:
            node = node[p]
        node[last] = value

    return apply


def _drop(path: str, *keys: str) -> Mutation:
    def apply(raw: dict[str, Any]) -> None:
        node: Any = raw
        for p in [int(p) if p.isdigit() else p for p in path.split("/")]:
            node = node[p]
        for k in keys:
            del node[k]

    return apply


# (id, mutation, path inside the file, fragment of the reason)
RULES: list[tuple[str, Mutation, str, str]] = [
    # shape: unknown keys and wrong types (pydantic)
    ("unknown-top-key", _set("colour", "red"), "(top level)", "unknown key 'colour'"),
    ("unknown-state-key", _set("states/open/colour", "red"), "states.open", "unknown key 'colour'"),
    ("unknown-transition-key", _set("transitions/0/when", "now"), "transitions[0]", "unknown key 'when'"),
    ("unknown-ladder-rung-key", _set("ladders/standard/0/colour", "red"), "ladders.standard[0]", "unknown key 'colour'"),
    ("version-not-a-number", _set("version", "one"), "version", "valid integer"),
    ("version-zero", _set("version", 0), "version", "greater than or equal to 1"),
    ("final-not-a-boolean", _set("states/done/final", "yes"), "states.done.final", "valid boolean"),
    ("role-unknown", _set("transitions/0/roles", ["mayor"]), "transitions[0].roles[0]", "'office'"),
    ("roles-empty", _set("transitions/0/roles", []), "transitions[0].roles", "at least 1"),
    ("trigger-not-snake-case", _set("transitions/0/trigger", "Finish"), "transitions[0].trigger", "pattern"),
    ("state-key-not-snake-case", _set("states/Open", {"label": "x"}), "states", "'Open' is not a snake_case identifier"),
    ("no-states", _set("states", {}), "states", "at least 1"),
    ("no-transitions", _set("transitions", []), "transitions", "at least 1"),
    ("anchor-unknown", _set("deadlines/due/anchor", "closed"), "deadlines.due.anchor", "'opened' or 'entered'"),
    ("level-above-five", _set("ladders/standard/0/level", 7), "ladders.standard[0].level", "less than or equal to 5"),
    ("notice-without-recipient", _set("ladders/standard/0/notice/to", []), "ladders.standard[0].notice.to",
     "at least 1"),
    ("named-ladder-not-a-list", _set("ladders/standard", "x"), "ladders.standard", "valid list"),
    # meaning (_check_meaning)
    ("initial-unknown", _set("initial", "nowhere"), "initial", "unknown state 'nowhere'"),
    ("initial-final", _set("initial", "done"), "initial", "cannot be final"),
    ("source-unknown", _set("transitions/0/source", "nowhere"), "transitions[0].source", "unknown state 'nowhere'"),
    ("source-final", _set("transitions/0/source", ["open", "done"]), "transitions[0].source", "'done' is final"),
    ("dest-unknown", _set("transitions/0/dest", "nowhere"), "transitions[0].dest", "unknown state 'nowhere'"),
    ("guard-not-allowed", _set("transitions/0/guards", ["os.system"]), "transitions[0].guards[0]",
     "'os.system' is not an allowed guard"),
    ("system-shared-with-people", _set("transitions/1/roles", ["system", "office"]), "transitions[1].roles",
     "fired by timers only"),
    ("sets-a-field", lambda r: (r.update(fields={"measure": {"label": "问责方式"}}),
                                r["transitions"][0].update(sets=["measure"])), "transitions[0].sets",
     "'measure' is a field set at opening"),
    ("state-unreachable", _set("states/limbo", {"label": "悬空"}), "states.limbo", "unreachable"),
    ("named-ladder-empty", _set("ladders/standard", []), "ladders.standard", "at least one rung"),
    ("inline-ladder-empty", _set("deadlines/sign/ladder", []), "deadlines.sign.ladder", "at least one rung"),
    ("offset-not-understood", _set("ladders/standard/0/at", "next week"), "ladders.standard[0].at",
     "offset 'next week' is not understood"),
    ("timer-fires-nothing", _drop("ladders/standard/0", "level", "notice"), "ladders.standard[0]", "fires nothing"),
    ("rung-trigger-unknown", _set("ladders/standard/1/trigger", "explode"), "ladders.standard[1].trigger",
     "unknown trigger 'explode'"),
    ("rung-trigger-not-system", _set("ladders/standard/1/trigger", "finish"), "ladders.standard[1].trigger",
     "no 'system' role"),
    ("running-in-unknown", _set("deadlines/due/running_in", ["nowhere"]), "deadlines.due.running_in[0]",
     "unknown state 'nowhere'"),
    ("running-in-final", _set("deadlines/due/running_in", ["open", "done"]), "deadlines.due.running_in[1]",
     "'done' is final"),
    ("rule-not-understood", _set("deadlines/sign/rule", "tomorrow"), "deadlines.sign.rule",
     "deadline rule 'tomorrow'"),
    ("rule-fixed-date", _set("deadlines/sign/rule", "2027-05-31"), "deadlines.sign.rule", "use rule: from_case"),
    ("record-unknown-field", _set("transitions/0/record", {"colour": "red"}), "transitions[0].record",
     "unknown field 'colour'"),
    ("reassigns-without-unit", _set("transitions/0/reassigns", True), "transitions[0].reassigns", "'unit'"),
    ("when-unknown-field", _set("deadlines/sign/when", {"urgent": ["true"]}), "deadlines.sign.when.urgent",
     "unknown field 'urgent'"),
    ("when-value-not-allowed", lambda r: (r.update(fields={"urgent": {"label": "紧急", "values": ["true", "false"]}}),
                                          r["deadlines"]["sign"].update(when={"urgent": ["maybe"]})),
     "deadlines.sign.when.urgent", "'maybe' is not a value of field 'urgent'"),
    ("variant-rule-not-understood",
     lambda r: (r.update(fields={"urgent": {"label": "紧急", "values": ["true", "false"]}}),
                r["deadlines"]["sign"].update(variants=[{"when": {"urgent": ["true"]}, "rule": "soon"}])),
     "deadlines.sign.variants[0].rule", "deadline rule 'soon'"),
    ("variant-when-unknown-field", _set("deadlines/sign/variants", [{"when": {"urgent": ["true"]}, "rule": "24h"}]),
     "deadlines.sign.variants[0].when.urgent", "unknown field 'urgent'"),
    ("ends-on-unknown-trigger", _set("deadlines/sign/ends_on", ["sign"]), "deadlines.sign.ends_on[0]",
     "unknown trigger 'sign'"),
    ("ladder-name-unknown", _set("deadlines/due/ladder", "gentle"), "deadlines.due.ladder", "unknown ladder 'gentle'"),
    ("main-deadline-unknown", _set("main_deadline", "finish_by"), "main_deadline", "unknown deadline 'finish_by'"),
]


class TestValidationRules:
    def test_the_base_file_is_valid(self, tmp_path: Path) -> None:
        """The file every rule below breaks is itself accepted, so each refusal is the rule's doing."""
        wf = load_file(write(tmp_path, BASE))
        assert wf.name == "mini" and set(wf.spec.states) == {"open", "late", "done"}

    @pytest.mark.parametrize(("mutate", "path", "reason"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
    def test_rule_rejects_with_file_path_and_reason(self, tmp_path: Path, mutate: Mutation, path: str,
                                                    reason: str) -> None:
        """A file breaking one rule is refused, naming the file, where in it, and what is wrong."""
        raw = copy.deepcopy(BASE)
        mutate(raw)
        file = write(tmp_path, raw)
        with pytest.raises(DefinitionError) as caught:
            load_file(file)
        err = caught.value
        assert err.exit_code == 4
        assert (err.file, err.path) == (str(file), path)
        assert reason in err.reason
        assert str(err).startswith(f"{file}: {path}: ")

    def test_top_level_must_be_a_mapping(self, tmp_path: Path) -> None:
        """A file holding a list instead of a workflow says so, naming the file."""
        file = write(tmp_path, ["name", "version"])
        with pytest.raises(DefinitionError, match="expected a mapping at the top level") as caught:
            load_file(file)
        assert caught.value.file == str(file)

    def test_unknown_key_lists_the_allowed_keys(self, tmp_path: Path) -> None:
        """The reason for an unknown key tells the author which keys would be allowed there."""
        raw = copy.deepcopy(BASE)
        raw["states"]["open"]["colour"] = "red"
        with pytest.raises(DefinitionError) as caught:
            load_file(write(tmp_path, raw))
        assert "allowed: label, final, description" in caught.value.reason


class TestBadFiles:
    """The bad_*.yaml files beside this test, as an office would write them."""

    @pytest.mark.parametrize(
        ("name", "path", "reason"),
        [
            ("bad_yaml_syntax.yaml", "line 8, column 7", "YAML syntax error"),
            ("bad_wrong_type.yaml", "version", "valid integer"),
            ("bad_unreachable_state.yaml", "states.archived", "unreachable"),
            ("bad_unknown_guard.yaml", "transitions[0].guards[0]", "not an allowed guard"),
            ("bad_silent_timer.yaml", "deadlines.due.ladder[0]", "fires nothing"),
        ],
    )
    def test_bad_file_is_refused(self, name: str, path: str, reason: str) -> None:
        """Each bad file is refused naming itself, the place inside it and the problem."""
        with pytest.raises(DefinitionError) as caught:
            load_file(DATA / name)
        assert caught.value.file == str(DATA / name)
        assert caught.value.path == path
        assert reason in caught.value.reason

    def test_unknown_key_in_an_inline_ladder_is_named(self) -> None:
        """An unknown key in a rung written inline under a deadline is reported at that rung,
        not as 'the ladder should be a string'."""
        with pytest.raises(DefinitionError) as caught:
            load_file(DATA / "bad_inline_rung_key.yaml")
        assert caught.value.path == "deadlines.due.ladder[0]"
        assert "unknown key 'colour'" in caught.value.reason

    def test_bad_recipient_in_an_inline_ladder_is_named(self, tmp_path: Path) -> None:
        """A notice to nobody in an inline ladder is reported at its `to`, with the allowed recipients."""
        raw = copy.deepcopy(BASE)
        raw["deadlines"]["sign"]["ladder"][0]["notice"]["to"] = ["mayor"]
        with pytest.raises(DefinitionError) as caught:
            load_file(write(tmp_path, raw))
        assert caught.value.path == "deadlines.sign.ladder[0].notice.to[0]"
        assert "lead_unit" in caught.value.reason
