"""ChurnModel: the registered pyfunc. It carries its preprocessing, threshold and risk tiers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from training.candidates import ChurnEstimator
from training.features import FeatureSpec

# Travels inside the MLflow model, so a server can read the spec without unpickling the model.
MODEL_DESCRIPTION_FILE = "churn_model.json"
RiskTier = Literal["low", "medium", "high"]
TIER_NAMES = np.array(["low", "medium", "high"], dtype=object)


@dataclass(frozen=True)
class RiskTiers:
    """Probability cut-offs: `medium` from the base churn rate, `high` at the decision threshold."""

    medium: float
    high: float

    @classmethod
    def from_threshold(cls, threshold: float, base_rate: float) -> RiskTiers:
        medium = base_rate if base_rate < threshold else threshold / 2
        return cls(medium=float(medium), high=float(threshold))

    def assign(self, probabilities: np.ndarray) -> np.ndarray:
        index = (probabilities >= self.medium).astype(np.int8) + (probabilities >= self.high)
        return TIER_NAMES[index]


@dataclass(frozen=True)
class Decisions:
    probability: np.ndarray
    churn: np.ndarray
    tier: np.ndarray


class ChurnModel(PythonModel):
    """Raw customer rows in, churn probabilities out."""

    def __init__(
        self,
        spec: FeatureSpec,
        estimator: ChurnEstimator,
        candidate: str,
        threshold: float,
        tiers: RiskTiers,
    ) -> None:
        self.spec = spec
        self.estimator = estimator
        self.candidate = candidate
        self.threshold = threshold
        self.tiers = tiers

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        return self.churn_probability(pd.DataFrame(model_input))

    def churn_probability(self, customers: pd.DataFrame) -> np.ndarray:
        features = self.spec.prepare(customers)
        return np.asarray(self.estimator.predict_proba(features))[:, 1]

    def decide(self, customers: pd.DataFrame) -> Decisions:
        probability = self.churn_probability(customers)
        return Decisions(
            probability=probability,
            churn=probability >= self.threshold,
            tier=self.tiers.assign(probability),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "threshold": self.threshold,
            "risk_tiers": asdict(self.tiers),
            "feature_spec": self.spec.to_dict(),
        }
