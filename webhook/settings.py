"""Relay configuration: one typed object read from the environment. Secrets have no default."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PositiveInt, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class RelaySettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    secret: SecretStr = Field(alias="MLFLOW_WEBHOOK_SECRET")
    jenkins_trigger_url: str = Field(alias="JENKINS_TRIGGER_URL")
    jenkins_trigger_token: SecretStr = Field(alias="JENKINS_TRIGGER_TOKEN")
    model_name: str = Field(default="churn", alias="CHURN_MODEL_NAME")
    model_alias: str = Field(default="champion", alias="CHURN_MODEL_ALIAS")
    host: str = Field(default="0.0.0.0", alias="RELAY_HOST")
    port: PositiveInt = Field(default=8088, alias="RELAY_PORT")
    # MLflow's own deliveries are seconds old; anything older is a replay.
    max_age_seconds: PositiveInt = Field(default=300, alias="RELAY_MAX_AGE_SECONDS")
    # Where relayed delivery ids are kept, shared by every replica.
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", alias="RELAY_REDIS_URL")
    redis_prefix: str = Field(default="churn-relay:delivery:", alias="RELAY_REDIS_PREFIX")
    max_body_bytes: PositiveInt = Field(default=1024 * 1024, alias="RELAY_MAX_BODY_BYTES")
    # Serve HTTPS with this certificate and key; otherwise terminate TLS in front of the relay.
    ssl_certfile: Path | None = Field(default=None, alias="RELAY_SSL_CERTFILE")
    ssl_keyfile: Path | None = Field(default=None, alias="RELAY_SSL_KEYFILE")
    jenkins_timeout_seconds: PositiveInt = Field(default=10, alias="RELAY_JENKINS_TIMEOUT_SECONDS")
    # redis://... where each promotion is published for services in follow mode
    # (CHURN_FOLLOW_BROADCAST on their side); unset, nothing is published.
    broadcast_url: str | None = Field(default=None, alias="RELAY_BROADCAST_URL")
    # Alertmanager's bearer token for /alerts; without one, drift alerts are refused.
    alert_token: SecretStr | None = Field(default=None, alias="RELAY_ALERT_TOKEN")
    # How long one drift episode is remembered, so repeats of it never retrain twice.
    alert_episode_ttl_seconds: PositiveInt = Field(
        default=7 * 86400, alias="RELAY_ALERT_EPISODE_TTL_SECONDS"
    )
