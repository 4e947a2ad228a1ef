"""How drift is measured: one typed object, read from CHURN_DRIFT_*."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import Field, PositiveFloat, PositiveInt, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> Any:
    """ "24h", "90m", "2d", "30s", or seconds as a number."""
    if isinstance(value, str):
        match = DURATION.fullmatch(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration such as 24h, 90m, 2d or 3600")
        return timedelta(seconds=float(match[1]) * UNIT_SECONDS[match[2]])
    return value


class DriftSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHURN_DRIFT_", extra="ignore")

    # Recorded rows from this long ago until now are compared with the reference profile.
    window: timedelta = Field(default=timedelta(hours=24), gt=timedelta(0))
    # One worker per replica recomputes drift this often and exports it to Prometheus.
    refresh_seconds: PositiveFloat = 60.0
    # Fewer rows than this in the window (sampled rows, for a feature) give no PSI: "too few
    # rows" on the pages, NaN on /metrics.
    min_rows: PositiveInt = 500

    @field_validator("window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)
