"""The `security` section of the office's settings file (DUBAN_SETTINGS).

```yaml
security:
  require_totp: [office, leader]   # these roles must sign in with a TOTP code too
```

A bad section is a UsageError (exit 2) naming the file and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from duban.errors import DefinitionError, UsageError

ROLES = ("office", "unit", "leader", "inspector")


@dataclass(frozen=True)
class Security:
    require_totp: frozenset[str] = frozenset()


def load(file: str | None = None) -> Security:
    """The section from `file` (default: DUBAN_SETTINGS); no file or no section: defaults."""
    file = file if file is not None else os.environ.get("DUBAN_SETTINGS") or None
    if not file:
        return Security()
    from duban.workflows import read_yaml

    try:
        raw = read_yaml(Path(file))
    except DefinitionError as exc:
        raise UsageError(f"{file}: {exc.reason}") from None
    section = raw.get("security") if isinstance(raw, dict) else None
    if section is None:
        return Security()
    if not isinstance(section, dict):
        raise UsageError(f"{file}: security: 应为映射，如 security: {{require_totp: [office, leader]}}")
    unknown = sorted(str(k) for k in section if k != "require_totp")
    if unknown:
        raise UsageError(f"{file}: security.{unknown[0]}: 未知的设置项（可用：require_totp）")
    roles = section.get("require_totp") or []
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list) or any(r not in ROLES for r in roles):
        raise UsageError(f"{file}: security.require_totp: 应为角色列表，角色可选：{', '.join(ROLES)}")
    return Security(frozenset(roles))
