"""Grades, ranks and the bottom three (seed 004: 民主评议政风行风).

Defaults from seed 004: a rate below 70 % is 不合格, 70 % to below 90 % 合格, 90 % and above
优秀; a unit with a violation (an accountability decision) in the period is graded with
the lowest band whatever its rate; the three lowest-ranked units lose 评优 eligibility
(取消评优资格), never one graded in the top band, ties at the cut broken by the on-time
rate, then fewer open overdue cases, then fewer escalations (SPEC §16). The office edits the bands in its settings file (env ``DUBAN_SETTINGS``)::

    grades:
      - {min: 90, label: 优秀}
      - {min: 70, label: 合格}
      - {min: 0, label: 不合格}

Rates are exact fractions and band limits exact decimals, so 69.99 % is never 70 %.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

from duban.errors import DefinitionError

BOTTOM = 3  # how many lowest-ranked units are flagged


@dataclass(frozen=True)
class Band:
    """A grade: rates (in percent) at or above ``min`` get ``label``."""

    min: Fraction
    label: str

    def to_json(self) -> dict[str, Any]:
        return {"min": float(self.min), "label": self.label}


DEFAULT_BANDS = (Band(Fraction(90), "优秀"), Band(Fraction(70), "合格"), Band(Fraction(0), "不合格"))


def load_bands(path: str | None) -> tuple[Band, ...]:
    """The grade bands from an office settings file, or the defaults when none is given.

    Raises:
        DefinitionError: the file cannot be read or its ``grades`` are malformed (exit 4),
            naming the file and the path inside it.
    """
    if not path:
        return DEFAULT_BANDS
    from duban.workflows import read_yaml

    raw = read_yaml(Path(path))
    if raw is None or (isinstance(raw, dict) and "grades" not in raw):
        return DEFAULT_BANDS
    if not isinstance(raw, dict):
        raise DefinitionError(path, "", "a settings file is a mapping, e.g. 'grades: [{min: 90, label: 优秀}, …]'")
    return parse_bands(raw["grades"], path)


def parse_bands(raw: Any, file: str) -> tuple[Band, ...]:
    """Validate ``grades``: a list of {min: 0–100, label: text}, one band starting at 0."""
    if not isinstance(raw, list) or not raw:
        raise DefinitionError(file, "grades", "must be a non-empty list of {min: PERCENT, label: TEXT}")
    bands = []
    for i, item in enumerate(raw):
        where = f"grades[{i}]"
        if not isinstance(item, dict) or set(item) != {"min", "label"}:
            raise DefinitionError(file, where, "each band has exactly 'min' (a percentage) and 'label'")
        bands.append(Band(_percent(item["min"], file, f"{where}.min"), _label(item["label"], file, f"{where}.label")))
    bands.sort(key=lambda b: b.min, reverse=True)
    if len({b.min for b in bands}) != len(bands):
        raise DefinitionError(file, "grades", "two bands have the same 'min'")
    if bands[-1].min != 0:
        raise DefinitionError(file, "grades", "the lowest band must have 'min: 0' so every rate gets a grade")
    return tuple(bands)


def _percent(value: Any, file: str, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DefinitionError(file, where, f"must be a number from 0 to 100, not {value!r}")
    try:
        exact = Fraction(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        raise DefinitionError(file, where, f"must be a number from 0 to 100, not {value!r}") from None
    if not 0 <= exact <= 100:
        raise DefinitionError(file, where, f"must be from 0 to 100, not {value}")
    return exact


def _label(value: Any, file: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(file, where, "must be a non-empty text such as 优秀")
    return value.strip()


def grade(rate: Fraction | None, violation: bool, bands: Sequence[Band]) -> str | None:
    """The grade of a rate (a fraction of 1); the lowest band for a violation; None with no rate."""
    if violation:
        return bands[-1].label
    if rate is None:
        return None
    percent = rate * 100
    return next(b.label for b in bands if percent >= b.min)


def band_index(label: str | None, bands: Sequence[Band]) -> int:
    return next((i for i, b in enumerate(bands) if b.label == label), len(bands))


def rank_key(row: dict[str, Any], bands: Sequence[Band]) -> tuple[int, Fraction, Fraction, int, int]:
    """Lower is better: grade band, then the rate it was graded by, then (the tie rule of
    SPEC §16) the on-time rate, fewer open overdue cases, fewer escalations."""
    def worst_first(rate: Fraction | None) -> Fraction:
        return -(rate if rate is not None else Fraction(-1))

    escalations = row.get("escalations") or {}
    return (band_index(row["grade"], bands), worst_first(row["grading_rate"]), worst_first(row.get("on_time_rate")),
            int(row.get("open_overdue") or 0), sum(int(n) for n in escalations.values()))


def rank(rows: list[dict[str, Any]], bands: Sequence[Band]) -> None:
    """Rank graded rows in place (``rank``, ``bottom_three``).

    Competition ranking (1, 2, 2, 4) by `rank_key`; ungraded rows get rank None and are never
    flagged. When more than three rows are graded, the three lowest-ranked are flagged (末位,
    取消评优资格) — never a row graded in the top band (优秀) — and a row tied with the
    third-lowest on every key is flagged with it, so a cut never splits true equals.
    """
    graded = [r for r in rows if r["grade"] is not None]
    keys = sorted(rank_key(r, bands) for r in graded)
    boundary = keys[-BOTTOM] if len(keys) > BOTTOM else None
    for r in rows:
        if r["grade"] is None:
            r["rank"], r["bottom_three"] = None, False
            continue
        k = rank_key(r, bands)
        r["rank"] = bisect_left(keys, k) + 1
        r["bottom_three"] = boundary is not None and k >= boundary and r["grade"] != bands[0].label
