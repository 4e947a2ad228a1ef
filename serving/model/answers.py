"""What a customer's decision looks like on the wire: one dict per customer, the same for
/predict, the console and the stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from churn.experiment import Experiment
from churn.model import Decisions
from history.records import Role
from serving.model.schema import customer_features
from serving.model.served import Served


def decide(
    served: Served,
    customers: Sequence[Any],
    role: Role = "champion",
    experiment: Experiment | None = None,
) -> tuple[list[dict[str, Any]], Decisions]:
    """Each validated customer's answer, in order, all by `served` in `role`, with the
    experiment's control group held back, and the decisions behind them (for metrics and the
    history)."""
    decisions = served.model.decide_prepared(customer_features(served.model.spec, customers))
    if experiment is not None:
        decisions = experiment.hold_back(decisions, [customer_id(c) for c in customers])
    unset = [None] * len(customers)
    groups = zip(
        unset if decisions.experiment is None else decisions.experiment.tolist(),
        unset if decisions.treatment is None else decisions.treatment.tolist(),
        unset if decisions.held_back_action is None else decisions.held_back_action.tolist(),
        strict=True,
    )
    # Whole columns to Python values at once: numpy scalars one by one cost more.
    columns = zip(
        customers,
        decisions.probability.tolist(),
        decisions.churn.tolist(),
        decisions.tier.tolist(),
        decisions.decile.tolist(),
        decisions.segment_id.tolist(),
        decisions.segment.tolist(),
        decisions.action.tolist(),
        decisions.expected_value.tolist(),
        groups,
        strict=True,
    )
    answers = [
        {
            "customer_id": customer_id(customer),
            "churn_probability": probability,
            "churn": churn,
            "risk_tier": tier,
            "decile": decile,
            "segment_id": segment_id,
            "segment": segment,
            "action": action,
            "expected_value": round(value, 2),
            "model_version": served.version,
            "role": role,
            "experiment": experiment_name,
            "treatment": treatment,
            "held_back_action": held_back,
        }
        for (
            customer, probability, churn, tier, decile, segment_id, segment, action, value,
            (experiment_name, treatment, held_back),
        ) in columns
    ]  # fmt: skip
    return answers, decisions


def customer_id(customer: Any) -> str | None:
    value = getattr(customer, "customer_id", None)
    return None if value is None else str(value)
