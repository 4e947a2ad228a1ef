"""Move the `champion` alias: to a chosen version, or to a challenger that earns more."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from churn.errors import UserError
from registry.client import champion, connect, get_version, latest_version, set_alias
from training.data import Source, read_table, validate
from training.evaluate import evaluate
from training.settings import TrainingSettings
from training.train import EVALUATION_ARTIFACT, TARGET_COLUMN_IN_ARTIFACT

log = logging.getLogger(__name__)

Decision = Literal["promoted", "kept", "first"]


@dataclass(frozen=True)
class PromotionResult:
    decision: Decision
    champion_version: str
    challenger_version: str
    challenger_profit: float | None = None
    champion_profit: float | None = None


def promote_version(version: str, settings: TrainingSettings) -> PromotionResult:
    client = connect(settings)
    get_version(client, settings.model_name, version)
    set_alias(client, settings.model_name, settings.model_alias, version)
    client.set_model_version_tag(settings.model_name, version, "promotion.decision", "manual")
    return PromotionResult("promoted", champion_version=version, challenger_version=version)


def promote_auto(settings: TrainingSettings, holdout: Source | None = None) -> PromotionResult:
    """Promote the newest version only if its expected campaign profit beats the champion's.

    Both are scored on the same customers: the challenger's held-out test split, or `holdout`.
    """
    client = connect(settings)
    challenger = latest_version(client, settings.model_name)
    current = champion(client, settings.model_name, settings.model_alias)
    name, alias = settings.model_name, settings.model_alias
    challenger_version = str(challenger.version)
    if current is None:
        set_alias(client, name, alias, challenger_version)
        client.set_model_version_tag(name, challenger_version, "promotion.decision", "first")
        return PromotionResult("first", challenger_version, challenger_version)
    current_version = str(current.version)
    if current_version == challenger_version:
        return PromotionResult("kept", current_version, challenger_version)

    customers, churned = _evaluation_data(client, challenger.run_id, holdout, settings)
    challenger_profit = _profit(
        f"models:/{name}/{challenger_version}", customers, churned, settings
    )
    champion_profit = _profit(f"models:/{name}/{current_version}", customers, churned, settings)
    won = challenger_profit > champion_profit
    decision: Decision = "promoted" if won else "kept"
    if won:
        set_alias(client, name, alias, challenger_version)
    tags = {
        "promotion.decision": decision,
        "promotion.compared_with": current_version,
        "promotion.challenger_profit_per_customer": f"{challenger_profit:.6g}",
        "promotion.champion_profit_per_customer": f"{champion_profit:.6g}",
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, challenger_version, key, value)
    return PromotionResult(
        decision,
        champion_version=challenger_version if won else current_version,
        challenger_version=challenger_version,
        challenger_profit=challenger_profit,
        champion_profit=champion_profit,
    )


def _evaluation_data(
    client: MlflowClient, run_id: str | None, holdout: Source | None, settings: TrainingSettings
) -> tuple[pd.DataFrame, np.ndarray]:
    if holdout is not None:
        challenger_run = client.get_run(run_id) if run_id else None
        params = challenger_run.data.params if challenger_run else {}
        target = params.get("target", "Churn")
        id_column = params.get("id_column")
        id_column = None if id_column in (None, "", "None") else id_column
        table = validate(read_table(holdout), target, id_column, min_rows=1)
        return table.features, table.target
    if run_id is None:
        raise UserError("The newest version has no run; pass --data with held-out customers.")
    with tempfile.TemporaryDirectory() as folder:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=EVALUATION_ARTIFACT, dst_path=folder
        )
        evaluation = pd.read_parquet(Path(path))
    churned = evaluation.pop(TARGET_COLUMN_IN_ARTIFACT).to_numpy()
    return evaluation, churned


def _profit(
    uri: str, customers: pd.DataFrame, churned: np.ndarray, settings: TrainingSettings
) -> float:
    model = mlflow.pyfunc.load_model(uri)
    churn_model = model.unwrap_python_model()
    try:
        scores = churn_model.churn_probability(customers)
    except UserError as exc:
        raise UserError(f"{uri} cannot score the comparison data: {exc}") from exc
    return evaluate(
        churned, scores, churn_model.threshold, settings.economics
    ).expected_profit_per_customer
