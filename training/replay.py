"""Replay: re-score recorded traffic with any registered version, before it serves anyone.

The history keeps the input features of a share of the answered customers
(CHURN_HISTORY_FEATURE_SAMPLE). Replay scores those with the version asked for and sets its
decisions beside the ones that were answered, in the table `GET /challenger` gives
(history/agreement.py).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import mlflow
import pandas as pd
import sqlalchemy as sa

from churn.errors import UserError
from churn.model import ChurnModel
from history.agreement import Agreement, agreement_table
from history.reader import bound
from history.store import History
from registry.client import connect, get_version
from training.settings import TrainingSettings

RECORDED = """
SELECT model_version, segment, risk_tier, action, churn_probability, expected_value, features
FROM predictions
WHERE NOT shadow AND features IS NOT NULL AND scored_at >= :since AND scored_at < :until
"""


def replay(
    settings: TrainingSettings, version: str, since: datetime, until: datetime
) -> list[Agreement]:
    """The answered decisions with recorded features from `since` to `until`, against
    `version`'s decisions for the same customers."""
    get_version(connect(settings), settings.model_name, version)
    history = History.open(settings.history)
    params = {"since": bound(history.engine, since), "until": bound(history.engine, until)}
    with history.engine.connect() as connection:
        recorded = pd.read_sql_query(sa.text(RECORDED), connection, params=params)
    if recorded.empty:
        raise UserError(
            f"No answered customer with recorded features from {since:%Y-%m-%d %H:%M} to "
            f"{until:%Y-%m-%d %H:%M} UTC: the service keeps features for a share of customers "
            "set by CHURN_HISTORY_FEATURE_SAMPLE."
        )
    uri = f"models:/{settings.model_name}/{version}"
    model: ChurnModel = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    features = pd.DataFrame([_parsed(value) for value in recorded["features"]])
    try:
        decisions = model.decide(features)
    except UserError as error:
        raise UserError(f"Version {version} cannot score the recorded customers: {error}") from None
    pairs = pd.DataFrame(
        {
            "champion_version": recorded["model_version"],
            "challenger_version": version,
            "segment": recorded["segment"],
            "champion_tier": recorded["risk_tier"],
            "challenger_tier": decisions.tier,
            "champion_action": recorded["action"],
            "challenger_action": decisions.action,
            "champion_probability": recorded["churn_probability"],
            "challenger_probability": decisions.probability,
            "champion_value": recorded["expected_value"],
            # Rounded as answers are (serving/model/answers.py).
            "challenger_value": decisions.expected_value.round(2),
        }
    )
    return agreement_table(pairs)


def _parsed(value: Any) -> dict[str, Any]:
    return dict(json.loads(value)) if isinstance(value, str) else dict(value)
