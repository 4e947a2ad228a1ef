"""What a customer's decision looks like on the wire: one dict per customer, the same for
/predict, the console and the stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from churn.model import Decisions
from history.records import Role
from serving.model.schema import customer_features
from serving.model.served import Served


def decide(
    served: Served, customers: Sequence[Any], role: Role = "champion"
) -> tuple[list[dict[str, Any]], Decisions]:
    """Each validated customer's answer, in order, all by `served` in `role`, and the decisions
    behind them (for metrics and the history)."""
    decisions = served.model.decide_prepared(customer_features(served.model.spec, customers))
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
        }
        for customer, probability, churn, tier, decile, segment_id, segment, action, value in (
            columns
        )
    ]
    return answers, decisions


def customer_id(customer: Any) -> str | None:
    value = getattr(customer, "customer_id", None)
    return None if value is None else str(value)
