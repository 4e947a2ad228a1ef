"""Traits: statements about one feature that are true or false of each customer.

A segment is named by the traits most of its members share ("tenure 12 or less",
"Month-to-month", "not active member"), and a playbook rule may name a segment by a trait's
feature. Each trait can be checked against prepared features, so a name is only ever a claim
that the training split bears out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from churn.columns import Table
from churn.features import MISSING_CATEGORY

TraitKind = Literal["at_most", "at_least", "level", "flag"]
TRUE_WORDS = frozenset({"yes", "true", "y", "1"})
FALSE_WORDS = frozenset({"no", "false", "n", "0"})
CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


@dataclass(frozen=True)
class Trait:
    feature: str
    kind: TraitKind
    # at_most/at_least: the bound; level: the level; flag: whether the flag is set.
    value: float | str | bool
    # flag on a categorical column: the levels that mean "set" (e.g. "Yes").
    true_levels: tuple[str, ...] = ()
    # Share of the segment's members it is true of, and of everyone, on the training split.
    share: float = 0.0
    population_share: float = 0.0

    def holds(self, features: Table) -> np.ndarray:
        """Whether the trait is true of each row of prepared `features` (missing: false)."""
        values = np.asarray(features[self.feature])
        if self.kind == "level":
            return np.asarray(values == self.value)
        if self.kind == "flag":
            if self.true_levels:
                is_set = np.isin(values, self.true_levels)
            else:
                is_set = np.asarray(values, dtype=float) == 1
            return is_set if self.value else ~is_set & _known(values)
        numbers = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            if self.kind == "at_most":
                return np.asarray(numbers <= float(self.value))
            return np.asarray(numbers >= float(self.value))

    @property
    def phrase(self) -> str:
        if self.kind == "level":
            return level_phrase(self.feature, str(self.value))
        if self.kind == "flag":
            return flag_phrase(self.feature, bool(self.value))
        bound = _number(float(self.value))
        return f"{self.feature} {bound} or {'less' if self.kind == 'at_most' else 'more'}"


def flag_phrase(feature: str, is_set: bool) -> str:
    """ "IsActiveMember" → "active member" / "not active member"; "HasCrCard" → "with cr card" /
    "without cr card"; "Partner" → "partner" / "no partner"."""
    words = [word.lower() for word in CAMEL_BOUNDARY.sub(" ", feature).replace("_", " ").split()]
    if len(words) > 1 and words[0] == "is":
        rest = " ".join(words[1:])
        return rest if is_set else f"not {rest}"
    if len(words) > 1 and words[0] == "has":
        rest = " ".join(words[1:])
        return f"with {rest}" if is_set else f"without {rest}"
    text = " ".join(words)
    return text if is_set else f"no {text}"


def level_phrase(feature: str, level: str) -> str:
    """A level that says what it is ("Month-to-month", "Fiber optic") stands alone; "No" of a
    three-level column reads as a flag, and a number or a code needs its column."""
    if is_yes_no(level):
        return flag_phrase(feature, level.lower() in TRUE_WORDS)
    if len(level) <= 2 or level.replace(".", "", 1).isdigit():
        return f"{feature} {level}"
    return level


def binary_levels(levels: set[str]) -> tuple[str, ...] | None:
    """The "set" levels of a yes/no column's levels, or None if it is not one."""
    lowered = {level.lower() for level in levels}
    if len(levels) == 2 and len(lowered & TRUE_WORDS) == 1 and len(lowered & FALSE_WORDS) == 1:
        return tuple(level for level in levels if level.lower() in TRUE_WORDS)
    return None


def is_yes_no(level: str) -> bool:
    """A yes/no word; "1" and "0" of a column with more levels are counts or codes."""
    return not level.isdigit() and level.lower() in TRUE_WORDS | FALSE_WORDS


def _known(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        return np.asarray(values != MISSING_CATEGORY)
    return np.asarray(~np.isnan(np.asarray(values, dtype=float)))


def _number(value: float) -> str:
    """The bound as written, digit for digit (bounds are rounded when they are chosen)."""
    return f"{int(value):,}" if value.is_integer() else f"{value:,}"
