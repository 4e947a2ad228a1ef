"""Where predictions are recorded and how: one typed object, read from CHURN_HISTORY_*."""

from __future__ import annotations

from pydantic import Field, PositiveFloat, PositiveInt, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HISTORY_URL = "sqlite:///history-db/history.db"


class HistorySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHURN_HISTORY_", extra="ignore")

    # Record every /predict answer and every file scored through the service.
    enabled: bool = True
    # An embedded SQLite file, or postgresql://... (partitioned by day) for production.
    url: str = DEFAULT_HISTORY_URL
    # Share of recorded rows that keep their input features, for drift.
    feature_sample: float = Field(default=0.05, ge=0, le=1)
    # Days of predictions kept; older days are dropped (whole partitions on PostgreSQL).
    retention_days: PositiveInt = 400
    # Store HMAC-SHA256(salt, id) instead of the raw customer id.
    hash_ids: bool = False
    id_salt: SecretStr | None = None
    # Rows one worker holds while the database is slow or down; past it rows are dropped and
    # counted, so /predict never waits on the database.
    buffer_rows: PositiveInt = 200_000
    # The writer sends what is buffered this often, in batches of at most `batch_rows`.
    flush_seconds: PositiveFloat = 0.25
    batch_rows: PositiveInt = 20_000
    # Outcomes are matched with the newest prediction made this many days before them.
    outcome_window_days: PositiveInt = 90

    @model_validator(mode="after")
    def _salt_when_hashing(self) -> HistorySettings:
        if self.hash_ids and not (self.id_salt and self.id_salt.get_secret_value()):
            raise ValueError(
                "CHURN_HISTORY_HASH_IDS=true needs CHURN_HISTORY_ID_SALT, a secret kept "
                "with the database: the same salt must hash the ids when they are read back"
            )
        return self
