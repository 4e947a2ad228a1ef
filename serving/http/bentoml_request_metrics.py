"""BentoML's request metrics for the requests serving/http/fast_lane.py answers ahead of its app.

BentoML counts a request in a middleware of its own app, which the lane goes around. These are
the same series (names, label names, multiprocess modes and BentoML's default duration
buckets), made with prometheus_client's public API and left unregistered: in BentoML's
multiprocess mode `/metrics` reads every series from the workers' files, so the lane's lines
for /predict and /explain appear beside BentoML's own, and only the lane writes them.
tests/integration/test_service.py fails if a BentoML release changes the names, labels or
buckets that this file copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import bentoml

NAMESPACE = "bentoml_service"
# BentoML's default `api_server.metrics.duration` buckets.
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0,
    float("inf"),
)  # fmt: skip
LABELS = ["endpoint", "service_name", "service_version", "http_response_code", "runner_name"]
SERVICE_LABELS = ["service_name", "service_version", "runner_name"]


@dataclass(frozen=True)
class Families:
    total: Any
    duration: Any
    in_progress: Any
    last_request: Any


@cache
def families() -> Families:
    """Made on first use: prometheus_client picks its multiprocess storage when imported, after
    BentoML has set the worker's metrics folder."""
    import prometheus_client

    return Families(
        prometheus_client.Counter(
            "request_total", "Total number of runner RPC", LABELS, namespace=NAMESPACE,
            registry=None,
        ),
        prometheus_client.Histogram(
            "request_duration_seconds", "runner RPC duration in seconds", LABELS,
            namespace=NAMESPACE, registry=None, buckets=DURATION_BUCKETS,
        ),
        prometheus_client.Gauge(
            "request_in_progress", "Total number of runner RPC in progress now",
            ["endpoint", *SERVICE_LABELS], namespace=NAMESPACE, registry=None,
            multiprocess_mode="livesum",
        ),
        prometheus_client.Gauge(
            "last_request_timestamp_seconds", "Timestamp of the last received request",
            SERVICE_LABELS, namespace=NAMESPACE, registry=None,
        ),
    )  # fmt: skip


@dataclass
class RequestMetrics:
    """BentoML's request metrics for one path, labelled as BentoML labels its own."""

    path: str
    _by_status: dict[int, tuple[Any, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        context = bentoml.server_context
        self._names = {
            "service_name": context.bento_name,
            "service_version": context.bento_version,
            "runner_name": context.service_name,
        }
        self.last_request = families().last_request.labels(**self._names)
        self.in_progress = families().in_progress.labels(endpoint=self.path, **self._names)

    def answered(self, status: int, seconds: float) -> None:
        children = self._by_status.get(status)
        if children is None:
            labels = {"endpoint": self.path, "http_response_code": status, **self._names}
            children = (
                families().total.labels(**labels),
                families().duration.labels(**labels),
            )
            self._by_status[status] = children
        total, duration = children
        total.inc()
        duration.observe(max(seconds, 0.0))
