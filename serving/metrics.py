"""The service's own Prometheus metrics, beside BentoML's request, latency and batch-size ones.

Created through `bentoml.metrics` so they aggregate across workers.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter
from collections.abc import Sequence
from functools import cache
from typing import Any

import bentoml
import numpy as np

from history.writer import WriterEvents
from monitoring.drift import DriftReport
from serving.access.api_keys import ANONYMOUS

REALISED_METRICS = ("roc_auc", "pr_auc", "top_decile_lift", "profit_per_customer")

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
PREDICTIONS_BY_DECILE = bentoml.metrics.Counter(
    name="churn_predictions_by_decile",
    documentation="Customers scored, by risk decile of the training population (1 = riskiest).",
    labelnames=["decile"],
)
# Set by one worker per replica (serving/monitor.py); "mostrecent" keeps that worker's value.
FEATURE_PSI = bentoml.metrics.Gauge(
    name="churn_feature_psi",
    documentation="Population stability index of each feature over the drift window, against "
    "the served version's training split.",
    labelnames=["feature"],
    multiprocess_mode="mostrecent",
)
PREDICTION_PSI = bentoml.metrics.Gauge(
    name="churn_prediction_psi",
    documentation="Population stability index of the prediction deciles over the drift window.",
    multiprocess_mode="mostrecent",
)
DRIFT_ROWS = bentoml.metrics.Gauge(
    name="churn_drift_window_rows",
    documentation="Recorded rows in the drift window: all rows for predictions, the sampled "
    "rows for features.",
    labelnames=["of"],
    multiprocess_mode="mostrecent",
)
REALISED = bentoml.metrics.Gauge(
    name="churn_realised",
    documentation="Realised performance per model version, as `training performance` last "
    "computed it from outcomes: roc_auc, pr_auc, top_decile_lift, profit_per_customer.",
    labelnames=["model_version", "metric"],
    multiprocess_mode="mostrecent",
)
REGISTRY_CHAMPION = bentoml.metrics.Gauge(
    name="churn_registry_champion_version",
    documentation="The version the registry's champion alias points at, as last read.",
    multiprocess_mode="mostrecent",
)
SERVED_VERSION = bentoml.metrics.Gauge(
    name="churn_model_version",
    documentation="The served model version, as a number (churn_model_info has it as a label).",
    # Each worker sets it when it starts serving a version: the latest swap is the answer.
    multiprocess_mode="mostrecent",
)
MONITOR_ERRORS = bentoml.metrics.Counter(
    name="churn_monitor_errors",
    documentation="Failed monitoring refreshes, by what failed: drift, realised, registry.",
    labelnames=["part"],
)
MODEL_RELOADS = bentoml.metrics.Counter(
    name="churn_model_reload",
    documentation="Follow mode: versions the champion alias pointed at, by what became of them: "
    "swapped, load_failed, check_failed, schema_changed, and download_failed (the registry or "
    "artifact store could not be read; tried again at the next poll).",
    labelnames=["result"],
)
CHALLENGER_RELOADS = bentoml.metrics.Counter(
    name="churn_challenger_reload",
    documentation="Versions the challenger alias pointed at, by what became of them (the results "
    "of churn_model_reload).",
    labelnames=["result"],
)
CHALLENGER_VERSION = bentoml.metrics.Gauge(
    name="churn_challenger_version",
    documentation="The challenger version this worker scores with (0: none loaded yet).",
    multiprocess_mode="max",
)
CHALLENGER_PREDICTIONS = bentoml.metrics.Counter(
    name="churn_challenger_predictions",
    documentation="Customers the challenger scored, by mode: shadow (recorded only) or canary "
    "(answered).",
    labelnames=["mode"],
)
CHALLENGER_DROPPED = bentoml.metrics.Counter(
    name="churn_challenger_dropped",
    documentation="Customers the shadow challenger did not score because its queue was full or "
    "its batch failed; the champion answered them all.",
)
CHALLENGER_AGREEMENT = bentoml.metrics.Gauge(
    name="churn_challenger_agreement",
    documentation="Share of the latest customers scored by both versions on which the challenger "
    "agrees with the champion, by what: risk_tier or action.",
    labelnames=["what"],
    multiprocess_mode="livemin",
)
SWAP_SECONDS = bentoml.metrics.Histogram(
    name="churn_model_swap_seconds",
    documentation="Follow mode: from the alias moving in the registry to this worker serving "
    "the version, by how the move was noticed (push or poll).",
    labelnames=["noticed_by"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
MODEL_INFO = bentoml.metrics.Gauge(
    name="churn_model_info",
    documentation="The served model: always 1, labelled with its registry name, version and run.",
    labelnames=["name", "version", "run_id"],
    multiprocess_mode="max",
)
MODELS_IN_MEMORY = bentoml.metrics.Gauge(
    name="churn_models_in_memory",
    documentation="Model versions held in memory by the worker holding most: 1 while serving, "
    "2 while a swap loads the next one or batches finish on the old one.",
    multiprocess_mode="livemax",
)


def hold_model(model: object) -> None:
    """Count `model` in churn_models_in_memory until it is freed."""
    MODELS_IN_MEMORY.inc()
    weakref.finalize(model, MODELS_IN_MEMORY.dec)


def record_predictions(
    probabilities: np.ndarray,
    tiers: np.ndarray,
    clients: Sequence[str] | None = None,
    deciles: np.ndarray | None = None,
) -> None:
    for probability in probabilities.tolist():
        PROBABILITY.observe(probability)
    if deciles is not None:
        for decile, count in Counter(deciles.tolist()).items():
            _decile_counter(int(decile)).inc(count)
    tier_list = tiers.tolist()
    pairs = zip(tier_list, clients, strict=True) if clients else ((t, ANONYMOUS) for t in tier_list)
    for (tier, client), count in Counter(pairs).items():
        _predictions_of(str(tier), client).inc(count)


# Looking up a labelled child costs more than counting with it, and key names are few.
@cache
def _predictions_of(tier: str, client: str) -> Any:
    return PREDICTIONS.labels(risk_tier=tier, client=client)


@cache
def _decile_counter(decile: int) -> Any:
    return PREDICTIONS_BY_DECILE.labels(decile=str(decile))


def record_drift(report: DriftReport) -> None:
    """PSI per feature and of the predictions; NaN where the window has too few rows, which no
    alert rule's threshold passes."""
    for drift in report.features:
        FEATURE_PSI.labels(feature=drift.feature).set(math.nan if drift.psi is None else drift.psi)
    PREDICTION_PSI.set(math.nan if report.prediction.psi is None else report.prediction.psi)
    DRIFT_ROWS.labels(of="predictions").set(report.prediction.rows)
    DRIFT_ROWS.labels(of="features").set(max((d.rows for d in report.features), default=0))


def record_realised(rows: Sequence[dict[str, Any]]) -> None:
    for row in rows:
        for metric in REALISED_METRICS:
            if row.get(metric) is not None:
                REALISED.labels(model_version=str(row["model_version"]), metric=metric).set(
                    float(row[metric])
                )


def record_registry_champion(version: str) -> None:
    REGISTRY_CHAMPION.set(float(version))


def count_monitor_error(part: str) -> None:
    MONITOR_ERRORS.labels(part=part).inc()


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
    if version.isdigit():
        SERVED_VERSION.set(int(version))


def record_swap(name: str, old: tuple[str, str], new: tuple[str, str]) -> None:
    """churn_model_info relabelled: the version served before reads 0, the new one 1."""
    MODEL_INFO.labels(name=name, version=old[0], run_id=old[1]).set(0)
    record_model(name, *new)


def count_model_reload(result: str) -> None:
    MODEL_RELOADS.labels(result=result).inc()


def observe_swap(noticed_by: str, seconds: float) -> None:
    SWAP_SECONDS.labels(noticed_by=noticed_by).observe(max(seconds, 0.0))


@cache
def _adaptive_batch_size(max_batch_size: int) -> bentoml.metrics.Histogram:
    """BentoML's own batch-size histogram, which its API path fills; created only when
    serving/http/fast_predict.py answers /predict, since BentoML's path registers the same name."""
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
        buckets=doubling_buckets(max_batch_size),
    )


def doubling_buckets(largest: int) -> tuple[float, ...]:
    """1, 2, 4, ... up to `largest`, then +Inf: the buckets BentoML gives its batch sizes."""
    edges: list[float] = []
    edge = 1.0
    while edge < largest:
        edges.append(edge)
        edge *= 2
    return (*edges, float(largest), float("inf"))


def record_batch(service_name: str, method: str, requests: int, max_batch_size: int) -> None:
    _batch_sizes_of(service_name, method, max_batch_size).observe(requests)


@cache
def _batch_sizes_of(service_name: str, method: str, max_batch_size: int) -> Any:
    return _adaptive_batch_size(max_batch_size).labels(
        runner_name=service_name,
        worker_index=bentoml.server_context.worker_index,
        method_name=method,
        service_version=bentoml.server_context.bento_version,
        service_name=bentoml.server_context.bento_name,
    )


def count_challenger_reload(result: str) -> None:
    CHALLENGER_RELOADS.labels(result=result).inc()


def record_challenger_version(version: str) -> None:
    if version.isdigit():
        CHALLENGER_VERSION.set(int(version))


def count_challenger_predictions(mode: str, customers: int) -> None:
    CHALLENGER_PREDICTIONS.labels(mode=mode).inc(customers)


def count_challenger_dropped(customers: int) -> None:
    CHALLENGER_DROPPED.inc(customers)


def record_challenger_agreement(same_tier: float, same_action: float) -> None:
    CHALLENGER_AGREEMENT.labels(what="risk_tier").set(same_tier)
    CHALLENGER_AGREEMENT.labels(what="action").set(same_action)
