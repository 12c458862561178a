"""How every message quotes a value from a file (SPEC §16 "Bad input is bounded"): at most
`QUOTE_CHARS` characters, however large the value, and never building the whole repr.

Pure string work, so the engine's definition checks and the file readers share it.
"""

from __future__ import annotations

import reprlib

QUOTE_CHARS = 200

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = QUOTE_CHARS
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 3, 6, 6


def clip(value: object) -> str:
    """``repr(value)`` cut to at most `QUOTE_CHARS` characters (never building the whole repr)."""
    text = _REPR.repr(value)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


def clip_text(text: str) -> str:
    """A piece of a file's text (a key, a cell) cut to at most `QUOTE_CHARS` characters."""
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"
