"""Serving configuration: one typed object read from the environment."""

from __future__ import annotations

from pydantic import AliasChoices, Field, NonNegativeInt, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict

from training.settings import DEFAULT_TRACKING_URI


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHURN_", extra="ignore", populate_by_name=True)

    tracking_uri: str = Field(
        default=DEFAULT_TRACKING_URI,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "CHURN_TRACKING_URI"),
    )
    model_name: str = "churn"
    model_alias: str = "champion"
    port: PositiveInt = 3000
    # On 2 cores with Locust beside the service at 510 req/s: 1 worker p50 10 ms / p99 53 ms,
    # 2 workers p50 10 ms / p99 29 ms (make loadtest). One worker per core.
    workers: PositiveInt = 2
    max_customers_per_request: PositiveInt = 1000
    # The latency budget: a request that has waited longer than this, less the time a batch
    # takes, is shed with a 503 (Retry-After: 1). At 250 ms, a half-second stall of the shared
    # 2-core machine shed 33 requests of a passing `make loadtest`; overload is bounded by the
    # in-flight limit below anyway. (BentoML's API path also uses it.)
    max_latency_ms: PositiveInt = 1000
    max_batch_size: PositiveInt = 2000
    # Requests one worker holds at once on the ASGI /predict path; more get an immediate 503.
    # A worker answers about 700-1,000 requests/s here, so 200 in flight is 200-300 ms of work.
    max_in_flight_per_worker: PositiveInt = 200
    # After this many /predict requests a keep-alive connection is closed (`Connection: close`)
    # and the client reconnects, as nginx's `keepalive_requests` does (0: never). The workers
    # share one listening socket, so which worker keeps a connection is a coin toss at connect
    # time: 64 Locust connections loaded the two workers 83% and 56% of a core (top), and the
    # busier one set the latency. Reconnecting redraws that toss every few seconds, and a busy
    # worker is slower to win it. Interleaved runs at 2,000 req/s offered on this noisy machine:
    # never 1,753 and 1,652 req/s (p99 71, 74 ms); after 100, 1,862 and 1,727 (p99 57, 68 ms).
    # (After 200: 1,709 and 1,738 against 1,622 and 1,681.) Reconnecting every 100 requests
    # costs a client one TCP handshake per 100 requests.
    requests_per_connection: NonNegativeInt = 100
    # Answer POST /predict in ASGI on BentoML's batcher rather than through BentoML's API path
    # (serving/fast_predict.py has the measurements). false: BentoML's own endpoint answers.
    fast_predict: bool = True
    # One log line per request costs more CPU than scoring it; /metrics counts requests anyway.
    access_log: bool = False
    # OpenTelemetry's middleware costs ~10% of a worker per request even when nothing is
    # sampled; turn it on for /predict when a tracing exporter is configured.
    trace_predict: bool = False
