"""Where the registry is and which model is served: the settings every program shares."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_STORE = Path("mlruns")
DEFAULT_TRACKING_URI = f"sqlite:///{LOCAL_STORE}/mlflow.db"


class RegistrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHURN_", extra="ignore", populate_by_name=True)

    tracking_uri: str = Field(
        default=DEFAULT_TRACKING_URI,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "CHURN_TRACKING_URI"),
    )
    model_name: str = "churn"
    model_alias: str = "champion"

    @property
    def champion_uri(self) -> str:
        return f"models:/{self.model_name}@{self.model_alias}"
