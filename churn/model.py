"""ChurnModel: the registered pyfunc. It carries its preprocessing, threshold, risk tiers,
deciles, segments and retention playbook, so every consumer decides the same way."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from churn.calibration import Calibration, calibrated
from churn.catboost_pool import catboost_probability
from churn.columns import Table
from churn.customer_value import CustomerValue
from churn.deciles import Deciles
from churn.explain import Explainer, Reason, contributions, reasons_from
from churn.features import FeatureSpec
from churn.linear_scorer import LinearScorer
from churn.playbook import Playbook, Situation
from churn.reference import ReferenceProfile
from churn.segments import Segmenter

# Travels inside the MLflow model, so a server can read the spec without unpickling the model.
MODEL_DESCRIPTION_FILE = "churn_model.json"
TIER_NAMES = np.array(["low", "medium", "high"], dtype=object)


class ChurnEstimator(Protocol):
    def predict_proba(self, features: pd.DataFrame) -> np.ndarray: ...


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
    decile: np.ndarray
    segment_id: np.ndarray
    segment: np.ndarray
    action: np.ndarray
    expected_value: np.ndarray
    customer_value: np.ndarray
    # Set by a retention experiment (churn/experiment.py), per customer; None without one.
    experiment: np.ndarray | None = None
    treatment: np.ndarray | None = None
    held_back_action: np.ndarray | None = None

    def frame(self) -> pd.DataFrame:
        def given(column: np.ndarray | None) -> np.ndarray:
            return np.full(len(self.probability), None, dtype=object) if column is None else column

        return pd.DataFrame(
            {
                "churn_probability": self.probability,
                "churn": self.churn,
                "risk_tier": self.tier,
                "decile": self.decile,
                "segment_id": self.segment_id,
                "segment": self.segment,
                "action": self.action,
                "expected_value": self.expected_value,
                "customer_value": self.customer_value,
                "experiment": given(self.experiment),
                "treatment": given(self.treatment),
                "held_back_action": given(self.held_back_action),
            }
        )


@dataclass(frozen=True)
class Insight:
    """Everything a retention team needs about a model, besides the estimator itself."""

    deciles: Deciles
    segments: Segmenter
    playbook: Playbook
    value: CustomerValue
    explainer: Explainer
    # What drift is measured against (monitoring/drift.py).
    reference: ReferenceProfile | None = None


class ChurnModel(PythonModel):
    """Raw customer rows in, churn probabilities out (`decide` and `explain` give the rest)."""

    # Versions registered before calibration existed unpickle without one.
    calibration: Calibration | None = None

    def __init__(
        self,
        spec: FeatureSpec,
        estimator: ChurnEstimator,
        candidate: str,
        threshold: float,
        tiers: RiskTiers,
        insight: Insight,
        calibration: Calibration | None = None,
    ) -> None:
        self.spec = spec
        self.estimator = estimator
        self.candidate = candidate
        self.threshold = threshold
        self.tiers = tiers
        self.insight = insight
        self.calibration = calibration

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        return self.churn_probability(pd.DataFrame(model_input))

    def churn_probability(self, customers: Table) -> np.ndarray:
        return self.churn_probability_prepared(self.spec.prepare_columns(customers))

    def churn_probability_prepared(self, features: Table) -> np.ndarray:
        if isinstance(self.estimator, LinearScorer):
            raw = self.estimator.predict_proba(features)[:, 1]
        else:
            raw = catboost_probability(self.estimator, self.spec, features)
        return calibrated(self.calibration, raw)

    def decide(self, customers: Table) -> Decisions:
        return self.decide_prepared(self.spec.prepare_columns(customers))

    def decide_prepared(self, features: Table) -> Decisions:
        """`decide` for features already prepared by `spec` (file scoring reuses them)."""
        if self.insight.playbook.uses_reasons and len(features):
            return self._decide(
                features, *contributions(self.insight.explainer, self.spec, features)
            )
        return self._decide(features, None, None)

    def decide_with_contributions_prepared(self, features: Table) -> tuple[Decisions, np.ndarray]:
        """Decisions and the contributions behind them (rows x `spec.names`), computed once
        (file scoring turns them into reasons)."""
        matrix, base = contributions(self.insight.explainer, self.spec, features)
        return self._decide(features, matrix, base), matrix

    def _decide(
        self, features: Table, matrix: np.ndarray | None, base: np.ndarray | None
    ) -> Decisions:
        reasons = np.full(len(features), "", dtype=object)
        if matrix is not None and base is not None and len(features):
            reasons = np.array(self.spec.names, dtype=object)[matrix.argmax(axis=1)]
            probability = calibrated(self.calibration, _probability(matrix, base))
        else:
            probability = self.churn_probability_prepared(features)
        tier = self.tiers.assign(probability)
        decile = self.insight.deciles.assign(probability)
        segment_id = self.insight.segments.assign(features)
        value = self.insight.value.of(features)
        recommended = self.insight.playbook.recommend(
            probability, value, Situation(tier, decile, segment_id, reasons, features)
        )
        return Decisions(
            probability=probability,
            churn=probability >= self.threshold,
            tier=tier,
            decile=decile,
            segment_id=segment_id,
            segment=self.insight.segments.names[segment_id],
            action=recommended.action,
            expected_value=recommended.expected_value,
            customer_value=value,
        )

    def explain(self, customers: Table) -> list[list[Reason]]:
        return self.explain_with_probability(customers)[1]

    def explain_with_probability(self, customers: Table) -> tuple[np.ndarray, list[list[Reason]]]:
        """Churn probabilities and top reasons, from one computation of the contributions."""
        features = self.spec.prepare_columns(customers)
        matrix, base = contributions(self.insight.explainer, self.spec, features)
        probability = calibrated(self.calibration, _probability(matrix, base))
        return probability, reasons_from(matrix, self.spec, features)

    def describe(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "calibration": None if self.calibration is None else self.calibration.describe(),
            "threshold": self.threshold,
            "risk_tiers": asdict(self.tiers),
            "deciles": list(self.insight.deciles.cutoffs),
            "segments": self.insight.segments.describe(),
            "playbook_version": self.insight.playbook.version,
            "playbook": self.insight.playbook.describe(),
            "customer_value": asdict(self.insight.value),
            "feature_spec": self.spec.to_dict(),
            "reference": None
            if self.insight.reference is None
            else self.insight.reference.to_dict(),
        }


def _probability(matrix: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Contributions plus the base value are the model's log-odds (tested to 1e-6; ~1e-12 in
    practice), so the model need not score the batch a second time."""
    return np.asarray(1.0 / (1.0 + np.exp(-(matrix.sum(axis=1) + base))))
