"""The stream consumer's configuration: one typed object read from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, SecretStr

from churn.experiment import ExperimentSettings
from history.settings import HistorySettings
from registry.settings import RegistrySettings


class StreamSettings(RegistrySettings):
    # Kafka, named as its clients name them.
    stream_bootstrap_servers: str = "127.0.0.1:9092"
    stream_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    stream_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    stream_sasl_username: str | None = None
    stream_sasl_password: SecretStr | None = None
    # A CA bundle to trust for SSL and SASL_SSL; the system's when unset.
    stream_ssl_cafile: Path | None = None
    stream_group: str = "churn-stream"
    stream_input_topic: str = "churn.customers"
    stream_output_topic: str = "churn.decisions"
    stream_dead_letter_topic: str = "churn.dead-letters"
    # A micro-batch is scored when it holds this many records or its first record has waited
    # this long, whichever comes first.
    stream_max_batch: PositiveInt = 2000
    stream_max_wait_ms: PositiveInt = 100
    # A record over this is dead-lettered with its first `stream_dead_letter_keep_bytes`.
    stream_max_record_bytes: PositiveInt = 1024 * 1024
    stream_dead_letter_keep_bytes: PositiveInt = 64 * 1024
    # Prometheus metrics on http://0.0.0.0:<port>/metrics.
    stream_metrics_port: int = Field(default=9465, ge=0, le=65535)
    # How often the champion alias is checked for a new version.
    follow_poll_s: PositiveFloat = 30
    history: HistorySettings = Field(default_factory=HistorySettings)
    # The retention experiment's control group (churn/experiment.py, CHURN_EXPERIMENT_*).
    experiment: ExperimentSettings = Field(default_factory=ExperimentSettings)
