"""What the scoring paths hand to the history writer, and the table rows made from it.

Scoring hands over whole batches as they are (the answers it built, the validated inputs); the
writer's thread makes the rows, so a request pays for one append and nothing per customer.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from history.customer_ids import CustomerIds

Source = Literal["api", "file", "batch", "stream"]
# Which of the two served versions scored a row.
Role = Literal["champion", "challenger"]

COLUMNS = (
    "scored_at", "request_id", "client", "source", "customer_id", "model_name", "model_version",
    "churn_probability", "churn", "risk_tier", "decile", "segment", "action", "expected_value",
    "customer_value", "reasons", "features", "role", "shadow", "experiment", "treatment",
    "held_back_action",
)  # fmt: skip
# A row's values in COLUMNS order; reasons and features are plain lists and dicts (or None).
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    scored_at: datetime
    source: Source
    model_name: str
    # Per customer: the answer as /predict gives it (customer_id, churn_probability, churn,
    # risk_tier, decile, segment, action, expected_value, model_version) ...
    predictions: Sequence[Mapping[str, Any]]
    # ... the input it was scored from (a validated request model or a mapping) ...
    inputs: Sequence[BaseModel | Mapping[str, Any] | None]
    # ... and, when known, its request id, client and top reasons.
    request_ids: Sequence[str | None] | None = None
    clients: Sequence[str | None] | None = None
    reasons: Sequence[list[str] | None] | None = None
    # What keeping each customer is worth, when known.
    customer_values: Sequence[float | None] | None = None
    role: Role = "champion"
    # Recorded only, not answered: the challenger in shadow mode, or the champion's decision
    # for a customer the canary answered.
    shadow: bool = False

    def __len__(self) -> int:
        return len(self.predictions)


def rows_of(batch: ScoredBatch, ids: CustomerIds, feature_sample: float) -> list[Row]:
    """The table rows of `batch`; a `feature_sample` share of them keep their input features."""
    count = len(batch.predictions)
    request_ids = batch.request_ids or [None] * count
    clients = batch.clients or [None] * count
    reasons = batch.reasons or [None] * count
    values = batch.customer_values or [None] * count
    rows = []
    for prediction, customer, request_id, client, customer_reasons, value in zip(
        batch.predictions, batch.inputs, request_ids, clients, reasons, values, strict=True
    ):
        keep_features = feature_sample > 0 and random.random() < feature_sample
        rows.append(
            (
                batch.scored_at,
                request_id,
                client,
                batch.source,
                ids.stored(prediction["customer_id"]),
                batch.model_name,
                str(prediction["model_version"]),
                prediction["churn_probability"],
                prediction["churn"],
                prediction["risk_tier"],
                prediction["decile"],
                prediction["segment"],
                prediction["action"],
                prediction["expected_value"],
                value,
                customer_reasons,
                _features(customer) if keep_features else None,
                batch.role,
                batch.shadow,
                prediction.get("experiment"),
                prediction.get("treatment"),
                prediction.get("held_back_action"),
            )
        )
    return rows


def _features(customer: BaseModel | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if customer is None:
        return None
    if isinstance(customer, BaseModel):
        return customer.model_dump(mode="json", by_alias=True, exclude={"customer_id"})
    return dict(customer)
