"""The stream consumer's Prometheus metrics, served on CHURN_STREAM_METRICS_PORT."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter(
    "churn_stream_records",
    "Records read from the input topic, by what became of them: scored, or dead_lettered "
    "(not a customer the request schema accepts, or one the model gives no finite score).",
    ["result"],
)
BATCH_SECONDS = Histogram(
    "churn_stream_batch_seconds",
    "Time to handle one micro-batch: validate, score, publish, and record in the history.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_RECORDS = Histogram(
    "churn_stream_batch_records",
    "Records per micro-batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
LAG = Gauge(
    "churn_stream_consumer_lag",
    "Records in the partition not yet handled: the fetch high-water mark minus the next offset "
    "to read.",
    ["topic", "partition"],
)
MODEL = Gauge(
    "churn_stream_model_info",
    "The model version the consumer scores with (value 1).",
    ["model_name", "model_version"],
)
