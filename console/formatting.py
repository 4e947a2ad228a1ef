"""Numbers as people read them, for the console's templates: 42.3%, 1,234, 158.64."""

from __future__ import annotations

from datetime import datetime

# Shown where there is no number: an en dash, as in print.
MISSING = "\u2013"


def percent(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{value:.{digits}%}"


def thousands(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.0f}"


def money(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.2f}"


def decimal(value: float | None, digits: int = 3) -> str:
    return MISSING if value is None else f"{value:,.{digits}f}"


def points(value: float | None) -> str:
    """A difference of two rates in percentage points: "+8.1 pts"."""
    return MISSING if value is None else f"{100 * value:+.1f} pts"


def moment(value: str | datetime | None) -> str:
    """A stored UTC time as "2026-12-01 23:30 UTC"."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return f"{value:%Y-%m-%d %H:%M} UTC"


OPERATOR_WORDS = {
    "in": "is", "not_in": "is not", "below": "is below", "above": "is above",
    "at_most": "is at most", "at_least": "is at least",
}  # fmt: skip


def conditions(when: dict[str, object]) -> str:
    """A playbook rule's conditions in words: "tier is high or medium and Contract is
    Month-to-month"."""
    parts = []
    for key, words in (("tier", "tier is"), ("decile", "decile is"),
                       ("top_reason", "the top reason is"), ("segment", "segment is"),
                       ("segment_trait", "the segment is defined by")):  # fmt: skip
        if key in when:
            parts.append(f"{words} {_either(when[key])}")
    for condition in when.get("features", []) or []:  # type: ignore[attr-defined]
        feature = condition["feature"]
        operator = next(k for k in condition if k != "feature")
        parts.append(f"{feature} {OPERATOR_WORDS[operator]} {_either(condition[operator])}")
    return " and ".join(parts) or "always"


def _either(values: object) -> str:
    items = [str(v) for v in values] if isinstance(values, list | tuple) else [str(values)]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


FILTERS = {
    "conditions": conditions,
    "percent": percent,
    "thousands": thousands,
    "money": money,
    "decimal": decimal,
    "points": points,
    "moment": moment,
}
