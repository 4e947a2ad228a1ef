"""Training configuration: one typed object read from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from churn.customer_value import check_formula
from churn.errors import UserError
from history.settings import HistorySettings
from monitoring.settings import DriftSettings
from registry.settings import LOCAL_STORE, RegistrySettings


class Economics(BaseSettings):
    """What a retention campaign earns and costs, per customer (Verbraken et al. 2013)."""

    model_config = SettingsConfigDict(env_prefix="CHURN_", extra="ignore")

    customer_value: PositiveFloat = 500.0
    offer_cost: float = Field(default=50.0, ge=0)
    contact_cost: float = Field(default=5.0, ge=0)
    acceptance_rate: float = Field(default=0.3, gt=0, le=1)


class TrainingSettings(RegistrySettings):
    artifact_root: Path = LOCAL_STORE / "artifacts"
    experiment: str = "churn"
    # The alias of the version served beside the champion (CHURN_CHALLENGER_ALIAS, as the service
    # reads it), which `promote --challenger` promotes.
    challenger_alias: str = "challenger"
    # Which candidates to train, comma-separated; the winner is registered.
    candidates: Annotated[tuple[Literal["logistic_regression", "catboost"], ...], NoDecode] = (
        "logistic_regression",
        "catboost",
    )
    catboost_iterations: PositiveInt = 2000
    catboost_threads: int = Field(default=-1, description="-1 uses every core")
    min_rows: PositiveInt = 200
    # None: the first shipped playbook whose columns the table has (training/playbooks.py).
    playbook: Path | None = None
    # A playbook naming columns the table lacks is refused, or loses those rules ("skip").
    playbook_missing: Literal["refuse", "skip"] = "refuse"
    # e.g. "MonthlyCharges * 12"; without one, every customer is worth economics.customer_value.
    customer_value_formula: str | None = None
    segments_k: int | None = Field(default=None, ge=3, le=6, description="None: best silhouette")
    economics: Economics = Field(default_factory=Economics)
    history: HistorySettings = Field(default_factory=HistorySettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)

    @field_validator("candidates", mode="before")
    @classmethod
    def _split_candidates(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(name.strip() for name in value.split(",") if name.strip())
        if not value:
            raise ValueError("name at least one candidate: logistic_regression, catboost")
        return value

    @field_validator("customer_value_formula")
    @classmethod
    def _blank_formula_is_none(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        try:
            check_formula(value)
        except UserError as exc:
            raise ValueError(f"cannot compute {value!r}: {exc}") from exc
        return value

    @property
    def uses_database_store(self) -> bool:
        """True when runs go straight into a database, so this process owns artifact storage."""
        return self.tracking_uri.split(":", 1)[0].split("+", 1)[0] in {
            "sqlite",
            "postgresql",
            "mysql",
            "mssql",
        }
