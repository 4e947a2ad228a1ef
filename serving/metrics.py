"""The service's own Prometheus metrics, beside BentoML's request, latency and batch-size ones.

Created through `bentoml.metrics` so they aggregate across workers. Only one histogram is
declared: some BentoML releases collect just the last of several (bentoml/BentoML#5056).
"""

from __future__ import annotations

import bentoml
import numpy as np

PREDICTIONS = bentoml.metrics.Counter(
    name="churn_predictions",
    documentation="Customers scored, by risk tier.",
    labelnames=["risk_tier"],
)
PROBABILITY = bentoml.metrics.Histogram(
    name="churn_probability",
    documentation="Predicted churn probability of each scored customer.",
    buckets=tuple(round(edge, 1) for edge in np.linspace(0.1, 1.0, 10)),
)
MODEL_INFO = bentoml.metrics.Gauge(
    name="churn_model_info",
    documentation="The served model: always 1, labelled with its registry name, version and run.",
    labelnames=["name", "version", "run_id"],
    multiprocess_mode="max",
)


def record_predictions(probabilities: np.ndarray, tiers: np.ndarray) -> None:
    for probability in probabilities:
        PROBABILITY.observe(float(probability))
    names, counts = np.unique(tiers.astype(str), return_counts=True)
    for name, count in zip(names, counts, strict=True):
        PREDICTIONS.labels(risk_tier=str(name)).inc(int(count))


def record_model(name: str, version: str, run_id: str) -> None:
    MODEL_INFO.labels(name=name, version=version, run_id=run_id).set(1)
