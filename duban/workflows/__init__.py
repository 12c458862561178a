"""Workflow files: the shipped definitions and an office's own.

One YAML file per workflow version, read within `duban.workflows.bounded_yaml`'s limits and validated by
`duban.engine.definition`. The shipped files live beside this module; an office adds its
own directory with ``DUBAN_WORKFLOWS`` (os.pathsep-separated). The guards a file may name
are the allow-list in `duban.engine.guards`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from duban.engine.workflow import Workflow
from duban.errors import DefinitionError, NotFoundError
from duban.workflows.overrides import apply_overrides, path_in_settings, rest_day_start, workflow_overrides

SHIPPED_DIR = Path(__file__).parent


def _log() -> Any:
    from duban.logconfig import get_logger

    return get_logger("duban.workflows")


def read_yaml(path: Path) -> Any:
    """Parse a YAML file within `duban.workflows.bounded_yaml`'s limits (a file past them, or not
    UTF-8, is a YamlLimitError, exit 2); a syntax error becomes a DefinitionError with its line."""
    import yaml  # here: a command with no file to read (`duban tick` without DUBAN_SETTINGS) never loads it

    from duban.workflows import bounded_yaml

    try:
        text = bounded_yaml.read_text(path)
    except OSError as exc:
        raise DefinitionError(str(path), "", f"cannot read the file: {exc.strerror}") from None
    try:
        return bounded_yaml.load(text, str(path), bounded_yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError(str(path), where, f"YAML syntax error: {bounded_yaml.clip_text(problem)}") from None


def load_file(path: str | Path) -> Workflow:
    """Load and validate one workflow file."""
    p = Path(path)
    return Workflow.from_raw(read_yaml(p), str(p))


def workflow_dirs() -> list[Path]:
    extra = [Path(d) for d in os.environ.get("DUBAN_WORKFLOWS", "").split(os.pathsep) if d]
    return [SHIPPED_DIR, *extra]


def settings_file() -> str | None:
    return os.environ.get("DUBAN_SETTINGS") or None


def office_rest_day_start() -> str:
    """The settings file's `calendar.rest_day_start` (SPEC §16), without loading the workflows."""
    file = settings_file()
    return rest_day_start(read_yaml(Path(file)), file)[0] if file else rest_day_start(None, None)[0]


class Catalog:
    """Every workflow version available to open new cases, newest version per name, with
    the office's overrides (DUBAN_SETTINGS) applied to the newest shipped version."""

    def __init__(self, dirs: list[Path] | None = None, settings: str | None = None) -> None:
        self._all: dict[tuple[str, int], Workflow] = {}
        # An office's file that cannot be used is skipped with a warning (README "Workflow
        # files"): one bad file must not stop every command, and open cases keep their pinned
        # definition anyway. A shipped file that fails is a bug in duban, so it raises.
        self.skipped: list[DefinitionError] = []
        for d in dirs if dirs is not None else workflow_dirs():
            for path in sorted(d.glob("*.yaml")):
                try:
                    self._add(path)
                except DefinitionError as exc:
                    if d.resolve() == SHIPPED_DIR.resolve():
                        raise
                    self.skipped.append(exc)
                    _log().warning("workflow.file_skipped", file=str(path), reason=str(exc),
                                   hint="duban workflow validate FILE")
        settings = settings if settings is not None else settings_file()
        self.rest_day_start, self.rest_day_source = rest_day_start(None, None)
        if settings:
            self._apply_settings(settings)

    def _add(self, path: Path) -> None:
        wf = load_file(path)
        key = (wf.name, wf.version)
        if key in self._all and self._all[key].fingerprint != wf.fingerprint:
            raise DefinitionError(str(path), "version", f"{wf.name} v{wf.version} is also defined, differently, in {self._all[key].source}")
        self._all[key] = wf

    def _apply_settings(self, file: str) -> None:
        raw = read_yaml(Path(file))
        self.rest_day_start, self.rest_day_source = rest_day_start(raw, file)
        for name, changes in workflow_overrides(raw, file).items():
            if name not in self.names():
                raise DefinitionError(file, f"workflows.{name}", f"unknown workflow '{name}' (available: {', '.join(self.names())})")
            base = self.latest(name)
            merged = apply_overrides(base.raw, changes, file)
            try:
                wf = Workflow.from_raw(merged, f"{base.source} + {file}")
            except DefinitionError as exc:
                raise path_in_settings(exc, file, name) from None
            self._all[(name, wf.version)] = wf

    def names(self) -> list[str]:
        return sorted({name for name, _ in self._all})

    def latest(self, name: str) -> Workflow:
        versions = [v for (n, v) in self._all if n == name]
        if not versions:
            raise NotFoundError(f"unknown workflow '{name}' (available: {', '.join(self.names())})")
        return self._all[(name, max(versions))]

    def get(self, name: str, version: int) -> Workflow | None:
        return self._all.get((name, version))

    def all(self) -> list[Workflow]:
        return [self._all[k] for k in sorted(self._all)]
