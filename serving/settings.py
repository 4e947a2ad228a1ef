"""Serving configuration: one typed object read from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import (
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    model_validator,
)

from churn.experiment import ExperimentSettings
from history.settings import HistorySettings
from monitoring.settings import DriftSettings
from registry.settings import RegistrySettings

DEFAULT_AUTH_DB = "sqlite:///keys/api-keys.db"


class ServingSettings(RegistrySettings):
    port: PositiveInt = 3000
    # One worker per core.
    workers: PositiveInt = 2
    max_customers_per_request: PositiveInt = 1000
    # Bodies over these get a 413 while they are read: /predict, /explain and the rest; files.
    max_request_bytes: PositiveInt = 8 * 1024 * 1024
    max_file_bytes: PositiveInt = 512 * 1024 * 1024
    # File-scoring tasks: how many one worker runs at once (more get a 429), how long one may
    # take, and where results are kept (default: a folder in the system's temp dir) for how long.
    max_file_tasks_per_worker: PositiveInt = 2
    file_task_timeout_s: PositiveFloat = 1800
    scored_files_dir: Path | None = None
    scored_files_keep_hours: PositiveFloat = 24
    # The latency budget: a request that has waited longer than this is shed with a 503
    # (Retry-After: 1) rather than queued without bound. Short machine stalls must not shed.
    max_latency_ms: PositiveInt = 1000
    max_batch_size: PositiveInt = 2000
    # Requests one worker holds at once on the ASGI /predict path; more get an immediate 503,
    # because requests waiting on a saturated event loop are invisible to the latency budget.
    max_in_flight_per_worker: PositiveInt = 200
    # A /predict or /explain body must arrive whole within this (else a 408); it counts as in
    # flight only once it has, so slow senders cannot fill the places above.
    body_timeout_s: PositiveFloat = 5
    # Requests of one client (key name, or address) whose body is still arriving, per worker;
    # past it the client's next request gets a 429, so trickled bodies cannot pile up.
    max_unfinished_bodies_per_client: PositiveInt = 100
    # After this many /predict requests a keep-alive connection is closed and the client
    # reconnects, as nginx's `keepalive_requests` does (0: never). The workers share one socket,
    # so without it a connection stays for good with whichever worker accepted it.
    requests_per_connection: NonNegativeInt = 100
    # One log line per request costs more CPU than scoring it; /metrics counts requests anyway.
    access_log: bool = False
    # OpenTelemetry's middleware costs CPU on every request even when nothing is sampled; false
    # leaves /predict and /explain out of it.
    trace_predict: bool = False
    # The cyclic garbage collector's thresholds per generation (gc.set_threshold). Python's
    # (700, 10, 10) ran a collection every request or two and a full one every few seconds,
    # each stalling the worker for up to 130 ms under load; nearly everything a request makes is
    # freed by reference counting long before a collection would find it.
    gc_thresholds: tuple[PositiveInt, PositiveInt, PositiveInt] = (20_000, 50, 100)
    # Access control (serving/access/authenticate.py): "required" asks every caller but /livez,
    # /readyz, /docs and /metrics for an API key; "off" lets anyone in and says so at start-up.
    auth: Literal["required", "off"] = "off"
    # Where keys live: an embedded SQLite file, or postgresql://... for a team and replicas.
    auth_db: str = DEFAULT_AUTH_DB
    # Keys are hashed with it; beside an SQLite key file one is made when unset
    # (serving/access/pepper.py).
    auth_pepper: SecretStr | None = None
    # Each worker re-reads the key table this often: a revoked key stops working within it.
    auth_cache_seconds: float = Field(default=10, gt=0, le=30)
    # Where rate limits and quotas are counted: memory:// counts in each worker on its own;
    # redis://host:6379 counts across all workers and replicas.
    rate_limit_storage: str = "memory://"
    # Past this the service stops waiting for the rate-limit store and lets requests through.
    rate_limit_timeout_ms: PositiveInt = 100
    # With auth required, /metrics needs a key with the `metrics` scope as well.
    metrics_require_key: bool = False
    # Prediction history (history/settings.py, CHURN_HISTORY_*).
    history: HistorySettings = Field(default_factory=HistorySettings)
    # The retention experiment's control group (churn/experiment.py, CHURN_EXPERIMENT_*).
    experiment: ExperimentSettings = Field(default_factory=ExperimentSettings)
    # Drift (monitoring/settings.py, CHURN_DRIFT_*), measured on one worker per replica.
    drift: DriftSettings = Field(default_factory=DriftSettings)
    # That worker also exports realised performance and the registry's champion version.
    monitor: bool = True
    # Signs the console's session cookies; by default derived from the API-key pepper, which
    # every worker and replica shares.
    ui_secret: SecretStr | None = None
    # Follow mode (serving/model/follow.py): serve whatever the champion alias points at, swapping
    # versions without a restart. Off, the service serves the version imported into the bento.
    follow_alias: bool = False
    follow_poll_s: PositiveFloat = 30.0
    # Worker n waits (n - 1) x this before loading a new version, so they do not load together.
    follow_stagger_s: float = Field(default=3.0, ge=0)
    # redis://... where the webhook relay publishes promotions, for every worker to hear at once.
    follow_broadcast: str | None = None
    # Where the console links a model version to (the MLflow UI); empty for no link.
    mlflow_ui_url: str | None = "http://localhost:5000"
    # Champion and challenger (serving/model/challenger.py): the version a second alias points
    # at scores beside the champion, followed as the champion is. "shadow": it scores the same
    # customers off the request path and its decisions are only recorded; "canary": it answers
    # a share of customers, picked by a salted hash of the customer id, so each keeps its arm.
    challenger_alias: str | None = None
    challenger_mode: Literal["off", "shadow", "canary"] = "off"
    challenger_share: float = Field(default=1.0, ge=0, le=1)
    challenger_salt: str = "churn-challenger"
    # Customers waiting for the shadow challenger in one worker; past it new ones are dropped,
    # and counted, so a slow challenger never holds the champion back.
    challenger_queue_customers: PositiveInt = 20_000

    @model_validator(mode="after")
    def _challenger_has_an_alias(self) -> Self:
        if self.challenger_mode != "off" and not self.challenger_alias:
            raise ValueError(
                f"CHURN_CHALLENGER_MODE={self.challenger_mode} needs CHURN_CHALLENGER_ALIAS, the "
                "registry alias of the challenger (for example: challenger)"
            )
        return self
