"""The API the stored champion declares: its request schema, with a real customer as example.

BentoML reads an API's input type from the class when `service.py` is imported (for `/docs`,
`/schema.json` and its clients), so this is the one thing read then, from the model's files in
the BentoML store; everything else is built when the service starts. Without a stored model it
declares a request that takes any fields, and `bentoml serve` stops at start-up saying the model
is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bentoml
from mlflow.models import Model as MLflowModel
from pydantic import BaseModel, ConfigDict, create_model

from churn.model import MODEL_DESCRIPTION_FILE
from serving.model.champion import example_of
from serving.model.schema import customer_model, request_model


@dataclass(frozen=True)
class DeclaredApi:
    customer: type[BaseModel]
    request: type[BaseModel]
    example: dict[str, Any]
    # The signature's input columns, which a followed version must keep.
    inputs: list[dict[str, Any]] = field(default_factory=list)
    description: dict[str, Any] = field(default_factory=dict)
    model_dir: Path | None = None


def declared_api(champion: bentoml.models.BentoModel, max_customers: int) -> DeclaredApi:
    stored = champion.stored
    if stored is None:
        anything = create_model("Customer", __config__=ConfigDict(extra="allow"))
        return DeclaredApi(anything, request_model(anything, max_customers, {}), {})
    return api_of(Path(stored.path_of("mlflow_model")), max_customers)


def api_of(model_dir: Path, max_customers: int) -> DeclaredApi:
    """The API of the MLflow model in `model_dir`."""
    signature = MLflowModel.load(str(model_dir)).signature
    description = json.loads((model_dir / "artifacts" / MODEL_DESCRIPTION_FILE).read_text())
    example = example_of(description)
    customer = customer_model(signature, description["feature_spec"]["id_column"], example)
    return DeclaredApi(
        customer,
        request_model(customer, max_customers, example),
        example,
        signature.inputs.to_dict(),
        description,
        model_dir,
    )
