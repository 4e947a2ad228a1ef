"""A worker is ready only while it can score the example customer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from churn.columns import Columns
from serving.model.readiness import can_score
from serving.model.schema import customer_model

SIGNATURE = ModelSignature(inputs=Schema([ColSpec("double", "tenure")]))
EXAMPLE = {"tenure": 3.0}
Customer = customer_model(SIGNATURE, None, EXAMPLE)


@dataclass
class Decisions:
    probability: np.ndarray


class Model:
    def __init__(self, probability: float | Exception) -> None:
        self.probability = probability
        self.seen: list[Any] = []

    def decide(self, customers: Columns) -> Decisions:
        self.seen.append(list(customers["tenure"]))
        if isinstance(self.probability, Exception):
            raise self.probability
        return Decisions(np.array([self.probability]))


@pytest.mark.parametrize(
    ("probability", "ready"),
    [(0.3, True), (math.nan, False), (math.inf, False), (MemoryError("no room"), False)],
)
def test_ready_only_while_the_example_gets_a_finite_probability(
    probability: float | Exception, ready: bool
) -> None:
    model = Model(probability)
    assert can_score(model, Customer, EXAMPLE) is ready
    assert model.seen == [[3.0]]
