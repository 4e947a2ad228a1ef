"""The retention playbook: risk tier x segment x top reason → the action worth most."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from churn.errors import UserError

NO_ACTION = "no action"


@dataclass(frozen=True)
class Action:
    name: str
    cost: float
    acceptance_rate: float
    description: str = ""


@dataclass(frozen=True)
class Rule:
    offer: tuple[str, ...]
    tiers: frozenset[str] | None = None
    segment_words: tuple[str, ...] | None = None
    reasons: frozenset[str] | None = None

    def matches(self, tier: str, segment: str, reason: str) -> bool:
        return (
            (self.tiers is None or tier in self.tiers)
            and (self.segment_words is None or any(w in segment for w in self.segment_words))
            and (self.reasons is None or reason in self.reasons)
        )


@dataclass(frozen=True)
class Recommendations:
    action: np.ndarray
    expected_value: np.ndarray


@dataclass(frozen=True)
class Playbook:
    version: str
    actions: dict[str, Action]
    rules: tuple[Rule, ...]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def uses_reasons(self) -> bool:
        return any(rule.reasons is not None for rule in self.rules)

    def recommend(
        self,
        probability: np.ndarray,
        customer_value: np.ndarray,
        tiers: np.ndarray,
        segments: np.ndarray,
        reasons: np.ndarray,
    ) -> Recommendations:
        actions = np.full(len(probability), NO_ACTION, dtype=object)
        values = np.zeros(len(probability))
        offers: dict[tuple[str, str, str], list[Action]] = {}
        chances, worths = probability.tolist(), customer_value.tolist()
        situations = zip(map(str, tiers), map(str, segments), map(str, reasons), strict=True)
        for row, situation in enumerate(situations):
            offered = offers.get(situation)
            if offered is None:
                offered = offers[situation] = self._offered(*situation)
            best_name, best_value = NO_ACTION, 0.0
            for action in offered:
                value = chances[row] * worths[row] * action.acceptance_rate - action.cost
                if value > best_value:
                    best_name, best_value = action.name, value
            actions[row], values[row] = best_name, best_value
        return Recommendations(actions, values)

    def _offered(self, tier: str, segment: str, reason: str) -> list[Action]:
        """The actions that the rules offer in this situation, by name (ties go to the first)."""
        names = {
            name
            for rule in self.rules
            if rule.matches(tier, segment, reason)
            for name in rule.offer
        }
        return [self.actions[name] for name in sorted(names)]


def load_playbook(path: Path) -> Playbook:
    try:
        source = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"Cannot read the playbook {path}: {exc}") from exc
    return parse_playbook(source, str(path))


def parse_playbook(source: Any, where: str = "playbook") -> Playbook:
    if not isinstance(source, dict) or not {"actions", "rules"} <= set(source):
        raise UserError(f"{where} needs 'actions' and 'rules' sections.")
    try:
        actions = {
            name: Action(
                name=name,
                cost=float(spec["cost"]),
                acceptance_rate=float(spec["acceptance_rate"]),
                description=str(spec.get("description", "")),
            )
            for name, spec in source["actions"].items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{where}: every action needs a numeric cost and acceptance_rate.") from exc
    rules = []
    for number, rule in enumerate(source["rules"], start=1):
        when = rule.get("when") or {}
        unknown = [name for name in rule.get("offer", []) if name not in actions]
        if unknown or not rule.get("offer"):
            raise UserError(f"{where}: rule {number} offers unknown actions {unknown or '[]'}.")
        rules.append(
            Rule(
                offer=tuple(rule["offer"]),
                tiers=frozenset(when["tier"]) if "tier" in when else None,
                segment_words=tuple(when["segment"]) if "segment" in when else None,
                reasons=frozenset(when["reason"]) if "reason" in when else None,
            )
        )
    return Playbook(str(source.get("version", "unversioned")), actions, tuple(rules), source)
