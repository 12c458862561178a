"""Names people type for users and units (SPEC §16): one canonical form, look-alikes refused.

A name is kept NFKC-normalised and trimmed, so ``ｆｇｊ`` (full-width), ``fgj `` and
``fgj`` are one name, and a unit typed with a stray ideographic space still finds its
unit. A name that only *reads* as another (``' system'``, ``ｓｙｓｔｅｍ``, ``'fgj '`` next
to ``fgj``) is refused rather than stored beside it: two directory entries a person cannot
tell apart would let one act or be notified for the other. Pure: no database.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable

from duban.errors import UsageError

RESERVED = "system"  # the scheduler's name (SPEC §8): no user or unit may read as it
MAX_LENGTH = 100


def normalise(text: str) -> str:
    """The canonical form of a typed name: NFKC (full-width letters, compatibility
    characters and the ideographic space become their plain forms), then trimmed."""
    return unicodedata.normalize("NFKC", text).strip()


def checked(text: str, what: str) -> str:
    """A new user's or unit's name in its canonical form, or UsageError (exit 2) saying why."""
    name = normalise(text)
    if not name:
        raise UsageError(f"{what}名称不能为空（给出的是 {text!r}）")
    if len(name) > MAX_LENGTH:
        raise UsageError(f"{what}名称过长：{len(name)} 个字符，最多 {MAX_LENGTH} 个")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise UsageError(f"{what}名称 {name[:50]!r} 含控制字符或不可见字符")
    if name.casefold() == RESERVED:
        raise UsageError(f"{what}名称 {text!r} 即 'system'：这是系统（计时器）的名称，不能用作{what}名称")
    return name


def same_as(typed: str, existing: Iterable[str]) -> str | None:
    """The existing name `typed` reads as (compared in canonical, case-folded form), if any."""
    key = normalise(typed).casefold()
    return next((e for e in existing if normalise(e).casefold() == key), None)


def closest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names most like `name` (difflib), best first; for "did you mean …"."""
    return difflib.get_close_matches(name, list(known), n=n, cutoff=0.6)


def suggestion(name: str, known: list[str], *, what: str = "单位", shown: int = 10) -> str:
    """What to say after "unknown X": the closest names, or else what exists."""
    near = closest(name, known)
    if near:
        return f"最接近的：{'、'.join(near)}"
    if not known:
        return f"名录中还没有任何{what}"
    rest = f" 等 {len(known)} 个" if len(known) > shown else ""
    return f"已有：{'、'.join(known[:shown])}{rest}"
