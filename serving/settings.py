"""Serving configuration: one typed object read from the environment."""

from __future__ import annotations

from pydantic import AliasChoices, Field, PositiveInt
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
    workers: PositiveInt = 1
    max_customers_per_request: PositiveInt = 1000
    # The batcher waits at most this long to fill a batch before scoring it.
    max_latency_ms: PositiveInt = 1000
    max_batch_size: PositiveInt = 2000
