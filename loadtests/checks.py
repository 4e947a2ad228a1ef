"""What makes a /predict response right, shared by Locust and the tests (which must not import
Locust: it monkey-patches the whole process for gevent)."""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json


def check(
    status: int, body: str | None, customers: list[dict[str, Any]], api: str = "bentoml"
) -> str | None:
    """What is wrong with a /predict (or MLflow /invocations) response, or None when right."""
    if status != 200:
        return f"status {status}: {(body or '')[:200]}"
    try:
        # pydantic-core's parser takes half of json.loads' time, and Locust shares the CPU with
        # the service it measures.
        predictions = from_json(body or "")
    except ValueError:
        return "body is not JSON"
    if api == "mlflow":
        return _check_mlflow(predictions, customers)
    if not isinstance(predictions, list) or len(predictions) != len(customers):
        return f"expected {len(customers)} predictions"
    for customer, prediction in zip(customers, predictions, strict=True):
        probability = prediction.get("churn_probability")
        if not isinstance(probability, float | int) or not 0.0 <= probability <= 1.0:
            return f"probability out of range: {probability!r}"
        if prediction.get("customer_id") != customer.get("customerID"):
            return "predictions out of order"
    return None


def _check_mlflow(answer: Any, customers: list[dict[str, Any]]) -> str | None:
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != len(customers):
        return f"expected {len(customers)} predictions"
    if not all(isinstance(p, float | int) and 0.0 <= p <= 1.0 for p in predictions):
        return "probability out of range"
    return None
