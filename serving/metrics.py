"""The service's own Prometheus metrics, beside BentoML's request, latency and batch-size ones.

Created through `bentoml.metrics` so they aggregate across workers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import cache
from typing import Any

import bentoml
import numpy as np
from bentoml._internal.context import server_context
from bentoml._internal.utils.metrics import exponential_buckets

from history.writer import WriterEvents
from serving.api_keys import ANONYMOUS

PREDICTIONS = bentoml.metrics.Counter(
    name="churn_predictions",
    documentation="Customers scored, by risk tier and by the API key's name (client).",
    labelnames=["risk_tier", "client"],
)
AUTH_REJECTIONS = bentoml.metrics.Counter(
    name="churn_auth_rejections",
    documentation="Requests refused by access control, by reason.",
    labelnames=["reason"],
)
RATE_LIMITED = bentoml.metrics.Counter(
    name="churn_rate_limited",
    documentation="Requests refused with a 429 for a key's rate limit or daily quota.",
    labelnames=["client"],
)
FAIL_OPEN = bentoml.metrics.Counter(
    name="churn_rate_limit_fail_open",
    documentation="Requests let through uncounted because the rate-limit store did not answer.",
)
KEY_STORE_ERRORS = bentoml.metrics.Counter(
    name="churn_key_store_errors",
    documentation="Failed reads of the API key table; workers keep the copy they last read.",
)
HISTORY_WRITTEN = bentoml.metrics.Counter(
    name="churn_history_written",
    documentation="Predictions written to the history database.",
)
HISTORY_DROPPED = bentoml.metrics.Counter(
    name="churn_history_dropped",
    documentation="Predictions not recorded because the history buffer was full (database slow "
    "or down) or still held rows at shutdown.",
)
HISTORY_WRITE_ERRORS = bentoml.metrics.Counter(
    name="churn_history_write_errors",
    documentation="Failed writes to the history database; the rows are retried.",
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


def record_predictions(
    probabilities: np.ndarray, tiers: np.ndarray, clients: Sequence[str] | None = None
) -> None:
    for probability in probabilities.tolist():
        PROBABILITY.observe(probability)
    tier_list = tiers.tolist()
    pairs = zip(tier_list, clients, strict=True) if clients else ((t, ANONYMOUS) for t in tier_list)
    for (tier, client), count in Counter(pairs).items():
        _predictions_of(str(tier), client).inc(count)


# Looking up a labelled child costs more than counting with it, and key names are few.
@cache
def _predictions_of(tier: str, client: str) -> Any:
    return PREDICTIONS.labels(risk_tier=tier, client=client)


def count_rejection(reason: str) -> None:
    _rejections_of(reason).inc()


@cache
def _rejections_of(reason: str) -> Any:
    return AUTH_REJECTIONS.labels(reason=reason)


def count_rate_limited(client: str) -> None:
    RATE_LIMITED.labels(client=client).inc()


def count_fail_open() -> None:
    FAIL_OPEN.inc()


def count_key_store_error() -> None:
    KEY_STORE_ERRORS.inc()


def history_events() -> WriterEvents:
    return WriterEvents(
        written=HISTORY_WRITTEN.inc, dropped=HISTORY_DROPPED.inc, failed=HISTORY_WRITE_ERRORS.inc
    )


def record_model(name: str, version: str, run_id: str) -> None:
    MODEL_INFO.labels(name=name, version=version, run_id=run_id).set(1)


@cache
def _adaptive_batch_size(max_batch_size: int) -> bentoml.metrics.Histogram:
    """BentoML's own batch-size histogram, which its API path fills; created only when
    serving/fast_predict.py answers /predict, since BentoML's path registers the same name."""
    return bentoml.metrics.Histogram(
        namespace="bentoml_service",
        name="adaptive_batch_size",
        documentation="Service adaptive batch size",
        labelnames=[
            "runner_name",
            "worker_index",
            "method_name",
            "service_version",
            "service_name",
        ],
        buckets=exponential_buckets(1, 2, max_batch_size),
    )


def record_batch(service_name: str, method: str, requests: int, max_batch_size: int) -> None:
    _batch_sizes_of(service_name, method, max_batch_size).observe(requests)


@cache
def _batch_sizes_of(service_name: str, method: str, max_batch_size: int) -> Any:
    return _adaptive_batch_size(max_batch_size).labels(
        runner_name=service_name,
        worker_index=server_context.worker_index,
        method_name=method,
        service_version=server_context.bento_version,
        service_name=server_context.bento_name,
    )
