"""YAML read with limits (SPEC §16 "Bad input is bounded").

Every YAML file duban reads (workflow definitions, the settings file, calendar files) comes
through here. PyYAML alone will happily expand a 500-byte "billion laughs" file into a
value whose repr takes gigabytes, or recurse until Python's stack gives out on deep
nesting. So a file is refused, before it is built into Python objects, when it is

- larger than `MAX_BYTES` (1 MiB) or not UTF-8 text,
- using more than `MAX_ALIASES` aliases (``*name``),
- nested deeper than `MAX_DEPTH` mappings and lists,
- more than `MAX_VALUES` values once its aliases are expanded (an alias counts as
  everything it stands for: ten aliases of ten aliases of … is how a bomb is built),
- or an alias that refers to the value it sits in (a value that contains itself).

The refusal is a `YamlLimitError` (a `DefinitionError`, exit 2) naming the file, the line
and the limit. `clip` (`duban.engine.quoting`) is how every message quotes a value from a
file: at most `QUOTE_CHARS` characters, however large the value.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from duban.engine.quoting import clip as clip
from duban.engine.quoting import clip_text as clip_text
from duban.errors import DefinitionError

MAX_BYTES = 1024 * 1024
MAX_ALIASES = 100
MAX_DEPTH = 50
MAX_VALUES = 10_000  # the largest shipped workflow holds under 500; 10,000 parse in about 0.2 s


class YamlLimitError(DefinitionError):
    """A YAML file past one of the limits, or not UTF-8: bad input, exit 2."""

    exit_code = 2


def read_text(path: Path) -> str:
    """The file's text, refused past `MAX_BYTES`, when not UTF-8, or when it is not a
    regular file (opening a FIFO would wait for a writer forever).

    Raises:
        YamlLimitError: one of those.
        OSError: the file cannot be read (the caller names it in its own words).
    """
    info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not stat.S_ISREG(info.st_mode):
        raise YamlLimitError(str(path), "", "not a regular file")
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise YamlLimitError(str(path), "", f"the file is larger than {MAX_BYTES // 1024} KiB (1 MiB), the limit for a YAML file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YamlLimitError(str(path), "", f"not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from None


def bounded(loader: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    """A subclass of ``loader`` (a SafeLoader) whose composer enforces the limits."""

    class Bounded(loader):  # type: ignore[valid-type,misc]
        _name = ""

        def compose_document(self) -> Any:
            # _values: the values so far, aliases expanded; _sizes: each node's expanded size
            self._aliases, self._depth, self._values = 0, 0, 0
            self._sizes: dict[int, int] = {}
            return super().compose_document()

        def compose_node(self, parent: Any, index: Any) -> Any:
            mark = self.peek_event().start_mark
            if self.check_event(yaml.AliasEvent):
                self._aliases += 1
                if self._aliases > MAX_ALIASES:
                    raise _limit(self._name, mark, f"more than {MAX_ALIASES} aliases (*name)")
                node = super().compose_node(parent, index)
                size = self._sizes.get(id(node))
                if size is None:
                    raise _limit(self._name, mark, "an alias refers to the value it is part of")
                self._values += size
            else:
                self._values += 1  # counted on the way in: refused as soon as the limit is passed
                self._depth += 1
                if self._depth > MAX_DEPTH:
                    raise _limit(self._name, mark, f"nested deeper than {MAX_DEPTH} levels")
                try:
                    node = super().compose_node(parent, index)
                finally:
                    self._depth -= 1
                size = 1 + sum(self._sizes[id(n)] for n in _children(node))
                self._sizes[id(node)] = size
            if self._values > MAX_VALUES:
                raise _limit(self._name, mark, f"more than {MAX_VALUES:,} values once its aliases are expanded")
            return node

    Bounded.__name__ = f"Bounded{loader.__name__}"
    return Bounded


def load(text: str, name: str, loader: type[yaml.SafeLoader]) -> Any:
    """Parse one YAML document with ``loader`` (made by `bounded`). PyYAML's own errors
    (syntax) propagate as `yaml.YAMLError`; the limits as `YamlLimitError`."""
    instance = loader(text)
    instance._name = name  # type: ignore[attr-defined]
    try:
        return instance.get_single_data()
    finally:
        instance.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _limit(name: str, mark: Any, reason: str) -> YamlLimitError:
    where = f"line {mark.line + 1}" if mark is not None else ""
    return YamlLimitError(name, where, f"refused: {reason} (YAML limits: ≤ 1 MiB, ≤ {MAX_ALIASES} aliases, "
                                       f"nesting ≤ {MAX_DEPTH}, ≤ {MAX_VALUES:,} values)")


SafeLoader = bounded(yaml.SafeLoader)
