"""The retention playbook: rules written against columns, risk tier, decile, top reason and
segment id offer actions; each customer gets the offered action worth most.

A rule's conditions name features and values (`{feature: Contract, in: [Month-to-month]}`,
`{feature: tenure, below: 12}`), never words of a generated segment name, so a retrain that
renames a segment cannot change who gets what. A customer's expected value of an action is
p(churn) x customer value x acceptance rate - cost; none positive means "no action".
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import yaml

from churn.columns import Table
from churn.errors import UserError

NO_ACTION = "no action"
Operator = Literal["in", "not_in", "below", "above", "at_most", "at_least"]
OPERATORS: tuple[str, ...] = get_args(Operator)
NUMERIC_OPERATORS = frozenset({"below", "above", "at_most", "at_least"})
CONDITION_KEYS = frozenset({"tier", "decile", "top_reason", "segment", "segment_trait", "features"})
TIERS = frozenset({"low", "medium", "high"})
# Below this many rows, rules are applied one customer at a time, with set lookups.
FEW_ROWS = 64


@dataclass(frozen=True)
class Action:
    name: str
    cost: float
    acceptance_rate: float
    description: str = ""
    # "assumed" (the playbook's figure) or how a campaign measured it.
    acceptance_source: str = "assumed"


@dataclass(frozen=True)
class FeatureCondition:
    feature: str
    operator: Operator
    # `in`/`not_in`: the values; the others: one bound.
    values: tuple[Any, ...]

    def holds(self, features: Table) -> np.ndarray:
        column = np.asarray(features[self.feature])
        if self.operator in ("in", "not_in"):
            found = _equals_any(column, self.values)
            return found if self.operator == "in" else ~found
        numbers = np.asarray(column, dtype=float)
        bound = float(self.values[0])
        with np.errstate(invalid="ignore"):  # a missing number meets no bound
            if self.operator == "below":
                return np.asarray(numbers < bound)
            if self.operator == "above":
                return np.asarray(numbers > bound)
            if self.operator == "at_most":
                return np.asarray(numbers <= bound)
            return np.asarray(numbers >= bound)

    def describe(self) -> dict[str, Any]:
        values = list(self.values) if self.operator in ("in", "not_in") else self.values[0]
        return {"feature": self.feature, self.operator: values}


@dataclass(frozen=True)
class Situation:
    """What rules can see about each customer of a batch."""

    tier: np.ndarray
    decile: np.ndarray
    segment_id: np.ndarray
    # The feature that raises the customer's risk most ("" when reasons were not computed).
    top_reason: np.ndarray
    features: Table


@dataclass(frozen=True)
class Rule:
    offer: tuple[str, ...]
    name: str = ""
    tiers: frozenset[str] | None = None
    deciles: frozenset[int] | None = None
    top_reasons: frozenset[str] | None = None
    segments: frozenset[int] | None = None
    # Segments named by a trait of one of these features; `Playbook.for_segments` turns them
    # into segment ids when the model is built.
    segment_traits: frozenset[str] | None = None
    features: tuple[FeatureCondition, ...] = ()

    @property
    def columns(self) -> set[str]:
        """The table columns this rule names."""
        named = {condition.feature for condition in self.features}
        return named | set(self.top_reasons or ()) | set(self.segment_traits or ())

    def matches(self, situation: Situation) -> np.ndarray:
        mask = np.ones(len(situation.tier), dtype=bool)
        for wanted, column in self._value_tests(situation):
            mask &= _equals_any(column, wanted)
        for condition in self.features:
            if not mask.any():
                break
            mask &= condition.holds(situation.features)
        return mask

    def matches_each(self, situation: Situation) -> list[bool]:
        """`matches` on Python values, one customer at a time, for a few customers."""
        held = [True] * len(situation.tier)
        for wanted, column in self._value_tests(situation):
            held = [h and value in wanted for h, value in zip(held, column.tolist(), strict=True)]
        for condition in self.features:
            if not any(held):
                break
            held = [
                h and c
                for h, c in zip(held, condition.holds(situation.features).tolist(), strict=True)
            ]
        return held

    def _value_tests(self, situation: Situation) -> list[tuple[frozenset[Any], np.ndarray]]:
        """The situation's columns this rule tests, each with the values it wants."""
        tests = (
            (self.tiers, situation.tier),
            (self.deciles, situation.decile),
            (self.top_reasons, situation.top_reason),
            (self.segments, situation.segment_id),
        )
        return [(wanted, column) for wanted, column in tests if wanted is not None]

    def describe(self) -> dict[str, Any]:
        when: dict[str, Any] = {}
        for key, values in (
            ("tier", self.tiers),
            ("decile", self.deciles),
            ("top_reason", self.top_reasons),
            ("segment", self.segments),
            ("segment_trait", self.segment_traits),
        ):
            if values is not None:
                when[key] = sorted(values)
        if self.features:
            when["features"] = [condition.describe() for condition in self.features]
        return {"name": self.name, "when": when, "offer": list(self.offer)}


@dataclass(frozen=True)
class Recommendations:
    action: np.ndarray
    expected_value: np.ndarray


@dataclass(frozen=True)
class _Offers:
    """The actions any rule offers, sorted by name, with their rates and costs, and the
    positions among them of each rule's offers."""

    names: np.ndarray
    rates: np.ndarray
    costs: np.ndarray
    of_rule: tuple[list[int], ...]


@dataclass(frozen=True)
class Playbook:
    version: str
    actions: dict[str, Action]
    rules: tuple[Rule, ...]
    source: dict[str, Any] = field(default_factory=dict)
    # Which playbook this is (its file's name), and rules dropped for columns the table lacks.
    name: str = "playbook"
    dropped_rules: tuple[str, ...] = ()

    @property
    def uses_reasons(self) -> bool:
        return any(rule.top_reasons is not None for rule in self.rules)

    @property
    def columns(self) -> set[str]:
        return {column for rule in self.rules for column in rule.columns}

    def recommend(
        self, probability: np.ndarray, customer_value: np.ndarray, situation: Situation
    ) -> Recommendations:
        rows = len(probability)
        offers = self._offers
        if not rows or not len(offers.names):
            return Recommendations(np.full(rows, NO_ACTION, dtype=object), np.zeros(rows))
        if rows < FEW_ROWS:
            return self._recommend_each(probability, customer_value, situation)
        offered = np.zeros((len(offers.names), rows), dtype=bool)
        for rule, offered_by_rule in zip(self.rules, offers.of_rule, strict=True):
            offered[offered_by_rule] |= rule.matches(situation)
        gain = np.asarray(probability, dtype=float) * np.asarray(customer_value, dtype=float)
        values = np.where(
            offered, gain[None, :] * offers.rates[:, None] - offers.costs[:, None], -np.inf
        )
        best = values.argmax(axis=0)  # ties go to the first name
        best_value = values[best, np.arange(rows)]
        worth_it = best_value > 0
        action = np.where(worth_it, offers.names[best], NO_ACTION)
        return Recommendations(action, np.where(worth_it, best_value, 0.0))

    def _recommend_each(
        self, probability: np.ndarray, customer_value: np.ndarray, situation: Situation
    ) -> Recommendations:
        """`recommend` one customer at a time on Python values, with the same arithmetic: for a
        server's batches of a few customers, numpy's cost per call was most of the work."""
        offers = self._offers
        names, rates, costs = offers.names.tolist(), offers.rates.tolist(), offers.costs.tolist()
        held_by_rule = [rule.matches_each(situation) for rule in self.rules]
        gains = np.asarray(probability, dtype=float) * np.asarray(customer_value, dtype=float)
        actions, values = [], []
        for row, gain in enumerate(gains.tolist()):
            offered = {
                offer
                for held, of_rule in zip(held_by_rule, offers.of_rule, strict=True)
                if held[row]
                for offer in of_rule
            }
            best, best_value = NO_ACTION, 0.0
            for offer in sorted(offered):  # ties go to the first name
                value = gain * rates[offer] - costs[offer]
                if value > best_value:
                    best, best_value = names[offer], value
            actions.append(best)
            values.append(best_value)
        return Recommendations(np.array(actions, dtype=object), np.array(values))

    @cached_property
    def _offers(self) -> _Offers:
        """Worked out once: a server calls `recommend` for every batch of a few customers."""
        names = sorted({name for rule in self.rules for name in rule.offer})
        position = {name: index for index, name in enumerate(names)}
        return _Offers(
            names=np.array(names, dtype=object),
            rates=np.array([self.actions[name].acceptance_rate for name in names]),
            costs=np.array([self.actions[name].cost for name in names]),
            of_rule=tuple([position[name] for name in rule.offer] for rule in self.rules),
        )

    def for_segments(self, traits_of: dict[int, set[str]]) -> Playbook:
        """Rules naming segments by trait get the ids of the segments with a trait of that
        feature (`traits_of`: segment id → the features of its traits)."""
        rules = []
        for rule in self.rules:
            if rule.segment_traits is not None:
                ids = {s for s, features in traits_of.items() if features & rule.segment_traits}
                if rule.segments is not None:
                    ids &= rule.segments
                rule = replace(rule, segments=frozenset(ids))
            rules.append(rule)
        return replace(self, rules=tuple(rules))

    def without(self, dropped: Collection[Rule]) -> Playbook:
        kept = tuple(rule for rule in self.rules if rule not in dropped)
        names = tuple(rule.name for rule in dropped)
        return replace(self, rules=kept, dropped_rules=self.dropped_rules + names)

    def with_acceptance(self, measured: dict[str, tuple[float, str]]) -> Playbook:
        """Actions with acceptance rates measured in a campaign: name → (rate, how measured)."""
        actions = {
            name: replace(
                action, acceptance_rate=measured[name][0], acceptance_source=measured[name][1]
            )
            if name in measured
            else action
            for name, action in self.actions.items()
        }
        return replace(self, actions=actions)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "actions": {
                name: {
                    "description": action.description,
                    "cost": action.cost,
                    "acceptance_rate": action.acceptance_rate,
                    "acceptance_source": action.acceptance_source,
                }
                for name, action in self.actions.items()
            },
            "rules": [rule.describe() for rule in self.rules],
            "dropped_rules": list(self.dropped_rules),
        }


def load_playbook(path: Path) -> Playbook:
    try:
        source = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"Cannot read the playbook {path}: {exc}") from exc
    return parse_playbook(source, str(path), name=path.stem)


def parse_playbook(source: Any, where: str = "playbook", name: str = "playbook") -> Playbook:
    if not isinstance(source, dict) or not {"actions", "rules"} <= set(source):
        raise UserError(f"{where} needs 'actions' and 'rules' sections.")
    try:
        actions = {
            action: Action(
                name=action,
                cost=float(spec["cost"]),
                acceptance_rate=float(spec["acceptance_rate"]),
                description=str(spec.get("description", "")),
            )
            for action, spec in source["actions"].items()
        }
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{where}: every action needs a numeric cost and acceptance_rate.") from exc
    if not isinstance(source["rules"], list):
        raise UserError(f"{where}: 'rules' is a list of rules.")
    rules = tuple(
        _rule(rule, f"{where}: rule {number}", actions, number)
        for number, rule in enumerate(source["rules"], start=1)
    )
    return Playbook(str(source.get("version", "unversioned")), actions, rules, source, name)


def _rule(source: Any, where: str, actions: dict[str, Action], number: int) -> Rule:
    if not isinstance(source, dict):
        raise UserError(f"{where} is not a mapping with 'when' and 'offer'.")
    offer = source.get("offer") or []
    unknown = [action for action in offer if action not in actions]
    if unknown or not offer:
        raise UserError(f"{where} offers unknown actions {unknown or '[]'}.")
    when = source.get("when") or {}
    if not isinstance(when, dict):
        raise UserError(f"{where}: 'when' is a mapping of conditions.")
    extra = set(when) - CONDITION_KEYS
    if extra:
        raise UserError(
            f"{where}: unknown conditions {sorted(extra)}; a rule may test "
            f"{', '.join(sorted(CONDITION_KEYS))}."
        )
    tiers = _strings(when, "tier", where)
    if tiers is not None and not tiers <= TIERS:
        raise UserError(f"{where}: tier {sorted(tiers - TIERS)} is not low, medium or high.")
    return Rule(
        offer=tuple(offer),
        name=str(source.get("name") or f"rule {number}"),
        tiers=tiers,
        deciles=_integers(when, "decile", where, range(1, 11)),
        top_reasons=_strings(when, "top_reason", where),
        segments=_integers(when, "segment", where, range(0, 100)),
        segment_traits=_strings(when, "segment_trait", where),
        features=tuple(
            _condition(condition, f"{where}, feature condition {index}")
            for index, condition in enumerate(when.get("features") or [], start=1)
        ),
    )


def _condition(source: Any, where: str) -> FeatureCondition:
    if not isinstance(source, dict) or "feature" not in source:
        raise UserError(f"{where} needs a 'feature', e.g. {{feature: tenure, below: 12}}.")
    operators = [key for key in source if key != "feature"]
    if len(operators) != 1 or operators[0] not in OPERATORS:
        raise UserError(
            f"{where} ({source['feature']}) needs exactly one of {', '.join(OPERATORS)}."
        )
    operator = operators[0]
    value = source[operator]
    if operator in NUMERIC_OPERATORS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{where} ({source['feature']}): {operator} takes a number.")
        return FeatureCondition(str(source["feature"]), operator, (float(value),))  # type: ignore[arg-type]
    values = value if isinstance(value, list) else [value]
    if not all(value is None or isinstance(value, str | int | float) for value in values):
        raise UserError(
            f"{where} ({source['feature']}): {operator} takes text or numbers, not {values}."
        )
    return FeatureCondition(str(source["feature"]), operator, tuple(values))  # type: ignore[arg-type]


def _strings(when: dict[str, Any], key: str, where: str) -> frozenset[str] | None:
    if key not in when:
        return None
    values = when[key] if isinstance(when[key], list) else [when[key]]
    return frozenset(str(value) for value in values)


def _integers(when: dict[str, Any], key: str, where: str, allowed: range) -> frozenset[int] | None:
    if key not in when:
        return None
    values = when[key] if isinstance(when[key], list) else [when[key]]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v in allowed for v in values):
        hint = (
            "; segments are named by id or by `segment_trait: [feature]`, never by their name"
            if key == "segment"
            else ""
        )
        raise UserError(
            f"{where}: {key} takes whole numbers from {allowed.start} to {allowed.stop - 1}, "
            f"not {values}{hint}."
        )
    return frozenset(values)


def _equals_any(column: np.ndarray, values: Collection[Any]) -> np.ndarray:
    """Elementwise `column in values`. A server's batches of a few customers take one set
    lookup per value (5 rows: 2 against 8 µs); a file's thousands of rows take a few numpy
    comparisons, which beat both the lookups and np.isin there."""
    if len(column) < FEW_ROWS:
        wanted = values if isinstance(values, frozenset) else frozenset(values)
        return np.array([value in wanted for value in np.asarray(column).tolist()], dtype=bool)
    found = np.zeros(len(column), dtype=bool)
    for value in values:
        found |= np.asarray(column == value)
    return found
