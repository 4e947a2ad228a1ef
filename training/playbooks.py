"""Which playbook a model is trained with, checked against the table's columns.

`CHURN_PLAYBOOK` names one; otherwise the first shipped playbook (playbooks/*.yaml, in
SHIPPED_ORDER) whose columns the table has is chosen, ending with the generic one, which names
no column at all. A playbook that names a column the table lacks is refused with the columns
listed, or, with `--playbook-missing=skip`, loses the rules that name them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Literal

from churn.errors import UserError
from churn.features import FeatureSpec
from churn.playbook import NUMERIC_OPERATORS, FeatureCondition, Playbook, Rule, load_playbook

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parent.parent / "playbooks"
SHIPPED_ORDER = ("telco", "bank", "generic")
MissingColumns = Literal["refuse", "skip"]


def choose_playbook(
    spec: FeatureSpec, named: Path | None = None, missing: MissingColumns = "refuse"
) -> Playbook:
    if named is not None:
        playbook = fitted_to(load_playbook(named), spec, missing)
        log.info("Playbook %s (%s), as CHURN_PLAYBOOK names", playbook.name, named)
        return playbook
    columns = set(spec.names)
    for name in SHIPPED_ORDER:
        playbook = load_playbook(SHIPPED / f"{name}.yaml")
        if playbook.columns <= columns:
            log.info("Playbook %s: the first shipped playbook whose columns the table has", name)
            return fitted_to(playbook, spec, "refuse")
    raise UserError(f"No shipped playbook fits; {SHIPPED / 'generic.yaml'} should always fit.")


def fitted_to(playbook: Playbook, spec: FeatureSpec, missing: MissingColumns) -> Playbook:
    """`playbook` with its values typed as the spec's columns; rules naming columns the spec
    lacks are refused (UserError listing them) or dropped, as `missing` says."""
    columns = set(spec.names)
    lacking = sorted(playbook.columns - columns)
    if lacking and missing == "refuse":
        rules = [rule.name for rule in playbook.rules if rule.columns - columns]
        raise UserError(
            f"The playbook {playbook.name} names columns the table does not have: "
            f"{', '.join(lacking)} (in {'; '.join(rules)}). Fix the playbook, choose another "
            "with CHURN_PLAYBOOK, or drop those rules with --playbook-missing=skip."
        )
    if lacking:
        dropped = [rule for rule in playbook.rules if rule.columns - columns]
        log.warning(
            "Playbook %s: dropped %d rule(s) naming columns the table lacks (%s): %s",
            playbook.name,
            len(dropped),
            ", ".join(lacking),
            "; ".join(rule.name for rule in dropped),
        )
        playbook = playbook.without(dropped)
    numeric = set(spec.numeric)
    return replace(playbook, rules=tuple(_typed(rule, numeric) for rule in playbook.rules))


def _typed(rule: Rule, numeric: set[str]) -> Rule:
    return replace(rule, features=tuple(_typed_condition(c, rule, numeric) for c in rule.features))


def _typed_condition(
    condition: FeatureCondition, rule: Rule, numeric: set[str]
) -> FeatureCondition:
    """Values as the service sees them: floats for a numeric column, text for a categorical."""
    if condition.feature not in numeric:
        if condition.operator in NUMERIC_OPERATORS:
            raise UserError(
                f"{rule.name}: {condition.feature} is categorical, so it cannot be "
                f"{condition.operator} a number; use in: [levels]."
            )
        return replace(condition, values=tuple(str(value) for value in condition.values))
    try:
        return replace(condition, values=tuple(float(value) for value in condition.values))
    except (TypeError, ValueError):
        raise UserError(
            f"{rule.name}: {condition.feature} is numeric, so {condition.operator} takes numbers, "
            f"not {list(condition.values)}."
        ) from None
