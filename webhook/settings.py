"""Relay configuration: one typed object read from the environment. Secrets have no default."""

from __future__ import annotations

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
