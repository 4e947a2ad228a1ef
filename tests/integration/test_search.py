"""`training train --tune`: an Optuna search per candidate, each trial a nested MLflow run, and
a registered model that serves calibrated probabilities."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
from mlflow.entities import Run

from churn.calibration import calibrated
from churn.features import FeatureSpec, infer_spec
from churn.model import ChurnModel
from tests.integration.conftest import quick_settings
from training.data import Source, read_table, validate
from training.search import search
from training.search_history import log_search_history
from training.search_options import SearchOptions
from training.train import split, train

pytestmark = pytest.mark.integration
SEED = 7


def test_a_three_trial_search_is_nested_calibrated_and_reproducible(
    tmp_path: Path, customers: pd.DataFrame, customers_csv: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="training")
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = quick_settings(tracking_uri, tmp_path / "artifacts")
    options = SearchOptions(trials=3, budget_minutes=None, folds=3)
    result = train(
        Source(str(customers_csv)), target="Churn", id_column="customerID", seed=SEED,
        settings=settings, search_options=options,
    )  # fmt: skip

    _every_step_logs_its_time(caplog.messages, settings.candidates)

    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(settings.experiment)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    children = {}
    for run in runs:
        children.setdefault(run.data.tags.get("mlflow.parentRunId"), []).append(run)
    searches = {r.info.run_name: r for r in children[result.parent_run_id]}
    best = {}
    for name in settings.candidates:
        study = searches[f"{name} search"]
        trials = children[study.info.run_id]
        assert sorted(r.info.run_name for r in trials) == [f"{name} trial {n}" for n in range(3)]
        for trial in trials:
            assert trial.data.tags["state"] == "complete"
            assert {"cv.roc_auc", "cv.profit", "cv.log_loss"} <= set(trial.data.metrics)
        best[name] = {
            key.removeprefix("best."): value
            for key, value in study.data.params.items()
            if key.startswith("best.")
        }
        _the_search_run_keeps_its_trials_and_history(client, study.info.run_id, trials)
    registered = client.get_model_version(settings.model_name, result.version)
    winner = next(r for r in result.results if r.candidate.name == result.winner)
    for key, value in best[result.winner].items():
        assert str(winner.candidate.params[key]) == value, key

    model: ChurnModel = mlflow.pyfunc.load_model(
        f"models:/{settings.model_name}/{result.version}"
    ).unwrap_python_model()
    assert winner.calibration is not None and model.calibration is not None
    assert registered.tags["calibration"] == winner.calibration.method
    described = model.describe()["calibration"]
    assert (described or {"method": "none"})["method"] == winner.calibration.method
    features = model.spec.prepare(customers.drop(columns=["Churn"]).head(500))
    raw = winner.candidate.raw_probability(features)
    np.testing.assert_allclose(
        model.churn_probability_prepared(features), calibrated(model.calibration, raw), atol=1e-9
    )
    decided = model.decide_prepared(features).probability
    np.testing.assert_allclose(decided, calibrated(model.calibration, raw), atol=1e-6)

    # The same data, seed and trials give the same parameters.
    spec, train_features, y_train = _training_split(customers_csv)
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name="again"):
        again = search(settings.candidates, spec, train_features, y_train, SEED, settings,
                       options, experiment.experiment_id)  # fmt: skip
    for name in settings.candidates:
        assert {k: str(v) for k, v in again[name].items()} == best[name], name


def test_a_search_run_keeps_every_trial_its_history_and_the_parameters_importance(
    tmp_path: Path,
) -> None:
    """A loss is searched as its negative, as `search` does; only `x` moves it, so fANOVA
    must find `x` the important parameter. A study whose trials all tie has no importances."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(
        lambda t: -((t.suggest_float("x", -3, 3) - 1) ** 2) + 0 * t.suggest_float("noise", 0, 1),
        n_trials=12,
    )
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("history", artifact_location=str(tmp_path / "a"))
    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(experiment_id=experiment) as run:
        log_search_history(study, "log_loss", SEED)

    logged = client.get_run(run.info.run_id).data.metrics
    assert logged["importance.x"] > 0.5 > logged["importance.noise"]
    assert logged["importance.x"] + logged["importance.noise"] == pytest.approx(1.0)
    table = pd.read_csv(client.download_artifacts(run.info.run_id, "search/trials.csv"))
    assert table["trial"].tolist() == list(range(12))
    assert table["log_loss"].tolist() == pytest.approx([-t.value for t in study.trials])
    assert table["x"].tolist() == pytest.approx([t.params["x"] for t in study.trials])
    assert "search/history.png" in [
        a.path for a in client.list_artifacts(run.info.run_id, "search")
    ]

    flat = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED))
    flat.optimize(lambda t: 0.5 + 0 * t.suggest_float("x", -3, 3), n_trials=6)
    with mlflow.start_run(experiment_id=experiment) as run:
        log_search_history(flat, "profit", SEED)
    assert not [m for m in client.get_run(run.info.run_id).data.metrics if "importance" in m]


def _the_search_run_keeps_its_trials_and_history(
    client: mlflow.MlflowClient, search_run_id: str, trials: list[Run]
) -> None:
    """`search/trials.csv` holds each nested run's value, and `best.cv.profit` after each
    trial is the best of the trials so far."""
    profits = {int(r.data.params["trial"]): r.data.metrics["cv.profit"] for r in trials}
    table = pd.read_csv(client.download_artifacts(search_run_id, "search/trials.csv"))
    assert table["state"].tolist() == ["complete"] * len(profits)
    assert table["profit"].tolist() == pytest.approx([profits[n] for n in table["trial"]])
    history = client.get_metric_history(search_run_id, "best.cv.profit")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (n, pytest.approx(max(profits[k] for k in range(n + 1)))) for n in sorted(profits)
    ]


def _training_split(csv: Path) -> tuple[FeatureSpec, pd.DataFrame, np.ndarray]:
    """What `train` searched on: the prepared training split of the same table and seed."""
    table = validate(read_table(Source(str(csv))), "Churn", "customerID", 200)
    spec = infer_spec(table.features, "customerID", "Churn")
    data = split(table, SEED)
    return spec, spec.prepare(data.train), data.y_train


def _every_step_logs_its_time(messages: list[str], candidates: tuple[str, ...]) -> None:
    """A line with its time for each long step, and one per finished trial with the best so far."""
    timed = {m.split(": ")[0] for m in messages if re.search(r": \d+\.\d s( \(|$)", m)}
    steps = [
        "Inferring each column's kind", "Splitting and preparing the features", "Searching",
        *(f"Fitting {name}" for name in candidates), "Evaluating and logging the candidates",
        "Segments", "Deciles and the reference profile", "Reasons", "Registering",
    ]  # fmt: skip
    assert [s for s in steps if s not in timed] == []
    assert any(m.startswith("Reading ") for m in timed)
    for name in candidates:
        trials = [m for m in messages if m.startswith(f"{name} trial ")]
        assert len(trials) == 3 and all("; best " in m for m in trials), trials
