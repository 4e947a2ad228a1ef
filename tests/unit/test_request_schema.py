"""The request schema built from a model's signature: what it accepts, what it rejects."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import numpy as np
import pytest
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from churn.errors import UserError
from churn.features import MISSING_CATEGORY, Feature, FeatureSpec
from serving.http.fast_predict import FastPredict, PredictEndpoint
from serving.model.schema import customer_columns, customer_features, customer_model, request_model

SIGNATURE = ModelSignature(inputs=Schema([ColSpec("double", "tenure"), ColSpec("string", "plan")]))
Customer = customer_model(SIGNATURE, "id", {"tenure": 3.0, "plan": "basic"})
PredictRequest = request_model(Customer, max_customers=10, example={})


def _answer(body: bytes, probability: float = 0.5) -> httpx.Response:
    def score(
        customers: list[Any], clients: list[str], request_ids: list[str]
    ) -> list[dict[str, Any]]:
        return [{"churn_probability": probability, "expected_value": 1.0} for _ in customers]

    endpoint = PredictEndpoint(PredictRequest, max_latency_ms=1000, max_batch_size=100)
    endpoint.bind(score)

    async def post() -> httpx.Response:
        async def nothing_else(scope: Any, receive: Any, send: Any) -> None:
            raise AssertionError("only /predict is called")

        transport = httpx.ASGITransport(app=FastPredict(nothing_else, endpoint))
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            return await client.post("/predict", content=body)

    return asyncio.run(post())


@pytest.mark.parametrize(
    "tenure", ['"inf"', '"Infinity"', '"-inf"', '"NaN"', "NaN", "Infinity", "-Infinity", "1e400"]
)
def test_a_number_that_is_not_finite_gets_a_400_naming_the_field(tenure: str) -> None:
    response = _answer(b'{"customers": [{"tenure": %s, "plan": "basic"}]}' % tenure.encode())
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"] == ["customers", 0, "tenure"]
    assert response.json()["detail"][0]["type"] == "finite_number"


@pytest.mark.parametrize("tenure", ["null", '""', '" "', "12", '"12.5"'])
def test_null_and_blank_are_missing_and_numbers_in_text_are_numbers(tenure: str) -> None:
    response = _answer(b'{"customers": [{"tenure": %s, "plan": "basic"}]}' % tenure.encode())
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("probability", [math.nan, math.inf])
def test_an_answer_that_is_not_finite_is_never_sent(probability: float) -> None:
    body = b'{"customers": [{"tenure": 1, "plan": "a"}, {"tenure": 1e300, "plan": "b"}]}'
    response = _answer(body, probability)
    assert response.status_code == 400
    assert response.json()["error"].startswith("customers.0: the model cannot score")
    assert "NaN" not in response.text and "Infinity" not in response.text


def test_customer_features_prepare_as_the_model_prepares_columns() -> None:
    signature = ModelSignature(
        inputs=Schema([ColSpec("double", "tenure"), ColSpec("string", "Payment method")])
    )
    customer = customer_model(signature, "id", {})
    spec = FeatureSpec(
        (Feature("tenure", "numeric", median=3.0), Feature("Payment method", "categorical")),
        id_column="id",
    )
    customers = [
        customer.model_validate(record)
        for record in (
            {"id": "a", "tenure": 12, "Payment method": " Mailed check "},
            {"id": "b", "tenure": None, "Payment method": ""},
            {"id": "c", "tenure": " 7.5 ", "Payment method": "   "},
            {"id": 4, "tenure": "", "Payment method": "1.0"},
        )
    ]
    expected = spec.prepare_columns(customer_columns(customers))
    prepared = customer_features(spec, customers)
    assert len(prepared) == len(expected) == 4
    np.testing.assert_array_equal(prepared["tenure"], expected["tenure"])
    assert prepared["tenure"].dtype == np.float64
    assert prepared["Payment method"].tolist() == expected["Payment method"].tolist()
    levels = ["Mailed check", MISSING_CATEGORY, MISSING_CATEGORY, "1.0"]
    assert prepared["Payment method"].tolist() == levels


def test_customer_features_name_a_feature_the_request_schema_lacks() -> None:
    spec = FeatureSpec((Feature("tenure", "numeric"), Feature("gender", "categorical")))
    with pytest.raises(UserError, match="Missing feature columns: gender"):
        customer_features(spec, [Customer.model_validate({"tenure": 1, "plan": "a"})])
