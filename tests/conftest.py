"""Shared fixtures: a small synthetic customer table, and settings that keep training quick."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from churn.features import infer_spec
from churn.model import ChurnModel
from training.data import validate
from training.playbooks import choose_playbook
from training.settings import TrainingSettings
from training.synth import synthesize
from training.train import fit_candidates, fit_insight, split

SMALL_ROWS = 3000
MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(autouse=True)
def _isolate_mlflow_uris(monkeypatch: pytest.MonkeyPatch) -> None:
    """mlflow.set_tracking_uri/set_registry_uri also export environment variables; without
    this, one test's store would leak into the next test's subprocesses."""
    for name in MLFLOW_URI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def customers() -> pd.DataFrame:
    return synthesize(SMALL_ROWS, seed=7)


@pytest.fixture(scope="session")
def customers_csv(tmp_path_factory: pytest.TempPathFactory, customers: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("data") / "customers.csv"
    customers.to_csv(path, index=False, na_rep=" ")
    return path


@pytest.fixture(scope="session")
def trained(customers: pd.DataFrame) -> dict[str, ChurnModel]:
    """Both candidates wrapped as ChurnModels, trained once, without MLflow."""
    settings = TrainingSettings(catboost_iterations=120)  # type: ignore[call-arg]
    table = validate(customers, "Churn", "customerID", min_rows=100)
    spec = infer_spec(table.features, "customerID", "Churn")
    data = split(table, seed=42)
    prepared = data.prepared(spec)
    playbook = choose_playbook(spec)
    models = {}
    for result in fit_candidates(spec, prepared, 42, settings):
        models[result.candidate.name] = ChurnModel(
            spec=spec,
            estimator=result.candidate.estimator,
            candidate=result.candidate.name,
            threshold=result.threshold,
            tiers=result.tiers,
            insight=fit_insight(result, spec, prepared, 42, settings, playbook),
        )
    return models
