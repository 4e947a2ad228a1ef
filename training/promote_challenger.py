"""Promotion on evidence: the champion alias moves to the challenger's version only when, on
the same customers' outcomes, the challenger's realised campaign profit is higher with 95%
confidence (training/paired.py), over at least `min_outcomes` customers.

Whatever is decided is stored as `challenge.*` tags on both versions, with the figures it
rests on. A
promoted challenger's alias is removed: it is the champion now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from churn.errors import UserError
from history.store import History
from registry.client import champion, connect, set_alias
from training.paired import Paired, paired
from training.realised import matched_predictions
from training.settings import TrainingSettings

Decision = Literal["promoted", "kept"]


@dataclass(frozen=True)
class ChallengerPromotion:
    decision: Decision
    reason: str
    champion_version: str
    challenger_version: str
    evidence: Paired | None


def promote_challenger(
    settings: TrainingSettings, if_better: bool, min_outcomes: int, window_days: int | None = None
) -> ChallengerPromotion:
    client = connect(settings)
    name = settings.model_name
    current = champion(client, name, settings.model_alias)
    rival = champion(client, name, settings.challenger_alias)
    if rival is None:
        raise UserError(f"No {name}@{settings.challenger_alias} in the registry to promote.")
    challenger_version = str(rival.version)
    champion_version = None if current is None else str(current.version)
    evidence = None
    if if_better and champion_version is not None and champion_version != challenger_version:
        history = History.open(settings.history)
        window = window_days or settings.history.outcome_window_days
        matched = matched_predictions(history, name, window)
        evidence = paired(matched, champion_version, challenger_version, settings.economics)
        decision, reason = _judged(evidence, min_outcomes)
    else:
        decision, reason = "promoted", "promoted by hand (without --if-better)"
    if decision == "promoted":
        set_alias(client, name, settings.model_alias, challenger_version)
        client.delete_registered_model_alias(name, settings.challenger_alias)
    tags = {"challenge.decision": decision, "challenge.reason": reason}
    if evidence is not None:
        profit = evidence.of("profit_per_customer")
        tags |= {
            "challenge.paired_customers": str(evidence.customers),
            "challenge.realised_profit_difference": f"{profit.difference:.6g}",
            "challenge.realised_profit_difference_low": f"{profit.low:.6g}",
            "challenge.realised_profit_difference_high": f"{profit.high:.6g}",
        }
    pairs = ((challenger_version, champion_version), (champion_version, challenger_version))
    for version, compared_with in pairs:
        if version is not None and compared_with is not None:
            for key, value in {**tags, "challenge.compared_with": compared_with}.items():
                client.set_model_version_tag(name, version, key, value)
    return ChallengerPromotion(
        decision,
        reason,
        challenger_version if decision == "promoted" else (champion_version or ""),
        challenger_version,
        evidence,
    )


def _judged(evidence: Paired, min_outcomes: int) -> tuple[Decision, str]:
    profit = evidence.of("profit_per_customer")
    if evidence.customers < min_outcomes:
        return "kept", (
            f"only {evidence.customers} customers have outcomes scored by both versions; "
            f"--min-outcomes is {min_outcomes}"
        )
    assert profit.difference is not None and profit.low is not None and profit.high is not None
    interval = (
        f"{profit.difference:+.2f} per customer (95% interval {profit.low:+.2f} to "
        f"{profit.high:+.2f}, {evidence.customers} customers)"
    )
    if profit.low > 0:
        return "promoted", f"the challenger earned {interval}"
    return "kept", f"the challenger is not shown to earn more: {interval}"
