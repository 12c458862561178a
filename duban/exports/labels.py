"""What a person reads beside the identifiers of a CSV or XLSX audit export: each event's
case title and lead unit, and the labels of its role, action, trigger and states (SPEC §16:
"a CSV or XLSX export has both an identifier and a label column").

Read once per export, before the first row (`ExportLabels.load`: one query over the cases,
one over the pinned workflow versions), and looked up a batch at a time with ``map`` over
dictionaries, so the labels cost no query per row and little Python per row (SPEC §11: an
export writes ≥ 100,000 rows/s). The parallel export loads them once in the parent and hands
them to every worker, so its file stays byte for byte the sequential one.

Titles and units are the case's as they are now (a renamed unit shows its new name; the
event's own ``data`` keeps what was recorded then). An event of a case the database does not
hold (or of no case: the directory's events) has an empty title and unit and shows the
identifiers of its workflow's words as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, select

from duban.engine.audit import EventBatch
from duban.engine.operations import LABELS as SHARED_LABELS
from duban.exports.cells import defused
from duban.present.labels import ACTION_LABELS, ROLE_LABELS
from duban.storage.tables import CASES, WORKFLOW_VERSIONS

_NO_CASE = ("", "", -1)  # (title, lead unit, index of the case's workflow version)
_title, _unit, _version = itemgetter(0), itemgetter(1), itemgetter(2)
Words = tuple[Any, ...]  # (version index, role, action, trigger, from state, to state) of one event


@dataclass
class ExportLabels:
    """Cases' titles and units, and every pinned workflow version's labels, for one export.

    Text that could begin a formula (a title, a unit, even a label from an office's own
    workflow file) is defused here, once (`duban.exports.cells`). For CSV the cells of a case (title,
    unit) and of an event's identifiers (each with its label) are also kept as finished CSV
    text, built by `csv.writer` the first time they occur: a batch's rows then take them with
    one dictionary look-up each."""

    cases: dict[int, tuple[str, str, int]] = field(default_factory=dict)
    triggers: dict[tuple[int, str], str] = field(default_factory=dict)  # (version index, trigger) → label
    states: dict[tuple[int, str], str] = field(default_factory=dict)
    _case_csv: dict[Any, str] = field(default_factory=dict, repr=False)
    _words_csv: dict[Words, str] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, conn: Connection, *, case_id: int | None = None, workflow: str | None = None) -> ExportLabels:
        """The labels an export of the given case or workflow (None: every case) needs."""
        versions: dict[tuple[str, int], int] = {}
        triggers: dict[tuple[int, str], str] = {}
        states: dict[tuple[int, str], str] = {}
        pinned = select(WORKFLOW_VERSIONS.c.name, WORKFLOW_VERSIONS.c.version, WORKFLOW_VERSIONS.c.body)
        if workflow is not None:
            pinned = pinned.where(WORKFLOW_VERSIONS.c.name == workflow)
        for name, version, body in conn.execute(pinned):
            k = versions[(name, version)] = len(versions)
            triggers.update({(k, op): label for op, label in SHARED_LABELS.items()})
            for t in body.get("transitions", []):
                triggers.setdefault((k, t["trigger"]), defused(t["label"]))  # the first one's label, as Workflow does
            states.update({(k, s): defused(spec["label"]) for s, spec in body.get("states", {}).items()})
        chosen = select(CASES.c.id, CASES.c.title, CASES.c.lead_unit, CASES.c.workflow, CASES.c.workflow_version)
        if case_id is not None:
            chosen = chosen.where(CASES.c.id == case_id)
        if workflow is not None:
            chosen = chosen.where(CASES.c.workflow == workflow)
        cases = {row.id: (defused(row.title), defused(row.lead_unit), versions.get((row.workflow, row.workflow_version), -1))
                 for row in conn.execute(chosen)}
        return cls(cases, triggers, states)

    def columns(self, b: EventBatch) -> tuple[list[Any], ...]:
        """Per event of the batch: title, unit, role, action, trigger, from- and to-state labels."""
        infos = list(map(self.cases.get, b.case_id, repeat(_NO_CASE)))
        keys = list(map(_version, infos))
        return (list(map(_title, infos)), list(map(_unit, infos)),
                _words(ROLE_LABELS, b.role), _words(ACTION_LABELS, b.action),
                _keyed(self.triggers, keys, b.trigger), _keyed(self.states, keys, b.from_state),
                _keyed(self.states, keys, b.to_state))

    def case_csv(self, b: EventBatch) -> list[str]:
        """Per event, its title and unit as CSV text (two fields)."""
        cells = list(map(self._case_csv.get, b.case_id))
        if None in cells:
            for i, case_id in enumerate(b.case_id):
                if cells[i] is None:
                    title, unit, _ = self.cases.get(case_id, _NO_CASE)
                    cells[i] = self._case_csv[case_id] = _csv_fields([title, unit])
        return cells  # type: ignore[return-value]

    def words_csv(self, b: EventBatch) -> list[str]:
        """Per event, each of role, action, trigger, from and to state as label then
        identifier, as CSV text (ten fields)."""
        infos = map(self.cases.get, b.case_id, repeat(_NO_CASE))
        keys = list(zip(map(_version, infos), b.role, b.action, b.trigger, b.from_state, b.to_state, strict=False))
        cells = list(map(self._words_csv.get, keys))
        if None in cells:
            for i, key in enumerate(keys):
                if cells[i] is None:
                    cells[i] = self._words_csv.setdefault(key, self._word_fields(key))
        return cells  # type: ignore[return-value]

    def _word_fields(self, key: Words) -> str:
        k, role, action, trigger, from_state, to_state = key
        return _csv_fields([
            ROLE_LABELS.get(role, role), role, ACTION_LABELS.get(action, action), action,
            self.triggers.get((k, trigger), trigger), trigger, self.states.get((k, from_state), from_state), from_state,
            self.states.get((k, to_state), to_state), to_state])


def _csv_fields(values: list[Any]) -> str:
    """Fields as `csv.writer` writes them inside a row (without the line's end)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue().removesuffix("\r\n")


def _words(labels: dict[str, str], values: Sequence[Any]) -> list[Any]:
    return list(map(labels.get, values, values))


def _keyed(labels: dict[tuple[int, str], str], keys: list[int], values: Sequence[Any]) -> list[Any]:
    return list(map(labels.get, zip(keys, values, strict=True), values))
