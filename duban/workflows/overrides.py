"""Jurisdiction overrides: an office changes a limit in its own settings file.

The settings file (``DUBAN_SETTINGS``, YAML) may hold, besides other sections::

    workflows:
      complaint:
        deadlines:
          reply: {rule: 3wd}                 # 5 wd → 3 wd in this jurisdiction
          sign_for: {rule: 4h, variants: []}
        ladders:
          standard:                          # a whole ladder replaced
            - {at: -2wd, level: 1, label: 黄牌预警, notice: {kind: 预警提醒, to: [lead_unit]}}
            - {at: "0", level: 2, label: 红牌超期, trigger: expire, notice: {kind: 催办通知, to: [lead_unit]}}

and how a period counted in working days starts for a case received on a rest day
(SPEC §16; default ``day_one``, `rest_day_start`)::

    calendar:
      rest_day_start: deemed_next_working_day   # or day_one (民法典 §201, the default)

The shipped file stays untouched. The effective definition is a new version numbered
``base × 1000 + n`` (v1 with the office's first settings is v1001; a later change of the
settings becomes v1002 when a case first uses it), so open cases keep the definition they
were opened with. Each overridden deadline's `source` says where its limit came from.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from duban.engine.quoting import clip
from duban.errors import DefinitionError

DEADLINE_KEYS = ("rule", "variants", "ladder")
OVERRIDE_BASE = 1000


def workflow_overrides(settings: Any, file: str) -> dict[str, dict[str, Any]]:
    """The `workflows` section of a settings file, checked for shape."""
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise DefinitionError(file, "", "a settings file must be a mapping")
    section = settings.get("workflows", {})
    if not isinstance(section, dict):
        raise DefinitionError(file, "workflows", "must map workflow names to their overrides")
    for name, body in section.items():
        if not isinstance(body, dict):
            raise DefinitionError(file, f"workflows.{name}", "must be a mapping with 'deadlines' and/or 'ladders'")
        for key in body:
            if key not in ("deadlines", "ladders"):
                raise DefinitionError(file, f"workflows.{name}.{key}", "unknown key (allowed: deadlines, ladders)")
    return section


# Where each reading of "a case received on a rest day" comes from, for `workflow show`.
DEFAULT_REST_DAY_SOURCE = "default: 民法典第201条 (the start day is not counted; the first working day after it is day 1)"


def rest_day_start(settings: Any, file: str | None) -> tuple[str, str]:
    """The `calendar.rest_day_start` of a settings file and where it comes from."""
    from duban.engine.calendar import DAY_ONE, REST_DAY_STARTS

    if settings is None or file is None:
        return DAY_ONE, DEFAULT_REST_DAY_SOURCE
    if not isinstance(settings, dict):
        raise DefinitionError(file, "", "a settings file must be a mapping")
    section = settings.get("calendar")
    if section is None:
        return DAY_ONE, DEFAULT_REST_DAY_SOURCE
    if not isinstance(section, dict):
        raise DefinitionError(file, "calendar", "must be a mapping (allowed key: rest_day_start)")
    for key in section:
        if key != "rest_day_start":
            raise DefinitionError(file, f"calendar.{clip(key)}", "unknown key (allowed: rest_day_start)")
    mode = section.get("rest_day_start", DAY_ONE)
    if mode not in REST_DAY_STARTS:
        raise DefinitionError(file, "calendar.rest_day_start", f"{clip(mode)} is not allowed (allowed: {', '.join(REST_DAY_STARTS)})")
    return str(mode), f"{Path(file).name}: calendar.rest_day_start"


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any], file: str) -> dict[str, Any]:
    """The workflow's raw definition with the office's overrides applied (a new dict)."""
    name = raw["name"]
    where = f"workflows.{name}"
    merged = copy.deepcopy(raw)
    for deadline, changes in (overrides.get("deadlines") or {}).items():
        if deadline not in merged.get("deadlines", {}):
            known = ", ".join(merged.get("deadlines", {})) or "none"
            raise DefinitionError(file, f"{where}.deadlines.{deadline}", f"'{name}' has no deadline '{deadline}' (deadlines: {known})")
        if not isinstance(changes, dict):
            raise DefinitionError(file, f"{where}.deadlines.{deadline}", f"must be a mapping of {', '.join(DEADLINE_KEYS)}")
        target = merged["deadlines"][deadline]
        was = target.get("rule")
        for key, value in changes.items():
            if key not in DEADLINE_KEYS:
                raise DefinitionError(file, f"{where}.deadlines.{deadline}.{key}", f"cannot be overridden (allowed: {', '.join(DEADLINE_KEYS)})")
            target[key] = value
        target["source"] = f"{Path(file).name} (shipped: {was}; {target.get('source', '')})".replace("; )", ")")
    for ladder, rungs in (overrides.get("ladders") or {}).items():
        if ladder not in merged.get("ladders", {}):
            known = ", ".join(merged.get("ladders", {})) or "none"
            raise DefinitionError(file, f"{where}.ladders.{ladder}", f"'{name}' has no ladder '{ladder}' (ladders: {known})")
        merged["ladders"][ladder] = rungs
    merged["version"] = int(raw["version"]) * OVERRIDE_BASE + 1
    merged["overrides"] = {"file": str(file), "base_version": raw["version"]}
    return merged


def path_in_settings(error: DefinitionError, settings_file: str, workflow: str) -> DefinitionError:
    """Re-aim an error found in the merged definition at the settings file that caused it."""
    return DefinitionError(settings_file, f"workflows.{workflow} → {error.path}", error.reason)
