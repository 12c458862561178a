"""JSON written a column at a time: each field's values of many events encoded in one call
by the very encoder the chain's canonical form uses, so the bytes are the same as one
record at a time by construction, with the per-event Python work cut to a string format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from json.encoder import encode_basestring
from typing import Any

from duban.engine.audit.chain import CANONICAL_JSON

_NULL = {None: "null"}
_SENTINEL = "\x00duban:next\x00"  # its JSON text never occurs inside an encoded value: control characters are escaped
# json.loads' own scanner (the C one when available): (value, end) of the JSON value at an index
scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def json_texts(values: Sequence[Any]) -> list[str]:
    """Each value of a text field as JSON: a string quoted and escaped as `json.dumps` does it
    (``ensure_ascii=False``), None as ``null``; any other value through the canonical encoder."""
    kinds = set(map(type, values))
    if kinds == {str}:
        return list(map(encode_basestring, values))
    if kinds <= {str, type(None)}:
        return [_NULL[None] if v is None else encode_basestring(v) for v in values]
    return list(map(CANONICAL_JSON, values))


def json_ints(values: Sequence[Any]) -> Sequence[Any]:
    """Each value of a whole-number field, for ``%s``: an int writes itself as JSON does, None
    becomes ``null``; any other value goes through the canonical encoder."""
    kinds = set(map(type, values))
    if kinds <= {int}:
        return values
    if kinds <= {int, type(None)}:
        return list(map(_NULL.get, values, values))
    return list(map(CANONICAL_JSON, values))


def json_values(values: Sequence[Any], encode: Callable[[Any], str] = CANONICAL_JSON, item_separator: str = ",") -> list[str]:
    """Each value as JSON, written by ``encode`` (whose list item separator is
    ``item_separator``) in one call for the whole column.

    The values go out as one list with a sentinel string between each two, and the text is
    cut at the encoded sentinels. A value can only add cuts (a list holding the sentinel
    string), never hide one (no encoded value ends in a separator), so when there is exactly
    one piece per value each piece is that value's own encoding; otherwise every value is
    encoded alone."""
    if not values:
        return []
    spaced = [_SENTINEL] * (2 * len(values) - 1)
    spaced[::2] = values
    pieces = encode(spaced)[1:-1].split(item_separator + encode(_SENTINEL) + item_separator)
    return pieces if len(pieces) == len(values) else list(map(encode, values))


def _plain(values: Sequence[Any]) -> bool:
    """Every value a str that JSON writes as itself between quotes: no quote, no backslash, no
    control character (`isprintable` also says no to a few other characters, such as U+3000;
    those columns are simply encoded).

    An ASCII column (hashes, roles, actions …) is checked as bytes: deleting every printable
    character but the quote and the backslash must leave nothing — the same test, several
    times faster than `str.isprintable` over 128 hash characters a row."""
    if set(map(type, values)) != {str}:
        return False
    joined = "".join(values)
    if joined.isascii():
        return not joined.encode("ascii").translate(None, _PLAIN_ASCII)
    return joined.isprintable() and '"' not in joined and "\\" not in joined


_PLAIN_ASCII = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')  # printable ASCII less quote and backslash


class JsonRows:
    """JSON objects of fixed keys, written a batch at a time from columns of values.

    Each field is ``text`` (str or None), ``int`` (whole number or None) or ``json`` (the
    column already encoded, e.g. by `json_values`). A text column with nothing to escape goes
    into the object between quotes as it is; any other column is encoded first (`json_texts`,
    `json_ints`), so every value is written exactly as `json.dumps` writes it. The object is
    then one ``%`` format per row."""

    def __init__(self, fields: Sequence[tuple[str, str]], end: str = "") -> None:
        self.fields = tuple(fields)
        self.end = end
        self._templates: dict[tuple[bool, ...], str] = {}

    def rows(self, columns: Sequence[Sequence[Any]]) -> Iterator[str]:
        """One JSON text per row; ``columns`` in the order of the fields."""
        quoted: list[bool] = []
        ready: list[Sequence[Any]] = []
        for (_, kind), values in zip(self.fields, columns, strict=True):
            plain = kind == "text" and _plain(values)
            quoted.append(plain)
            ready.append(values if plain or kind == "json" else json_texts(values) if kind == "text" else json_ints(values))
        key = tuple(quoted)
        template = self._templates.get(key)
        if template is None:
            slots = (f'"{name}":' + ('"%s"' if q else "%s") for (name, _), q in zip(self.fields, key, strict=True))
            template = self._templates[key] = "{" + ",".join(slots) + "}" + self.end
        return map(template.__mod__, zip(*ready, strict=True))
