"""The search behind `training train --tune`: an Optuna study per candidate.

Each trial's parameters are judged by stratified k-fold cross-validation on the training split
alone (the validation split calibrates and sets the threshold; the test split only reports),
by expected campaign profit or by log-loss. A trial is a nested MLflow run with its parameters
and cross-validated metrics; one that is hopeless after a fold is pruned. The sampler is
seeded, so the same data, seed and number of trials give the same parameters.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import mlflow
import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from churn.errors import UserError
from churn.features import FeatureSpec
from training.candidates import CandidateName, fit_catboost, fit_logistic_regression
from training.evaluate import profit_curve
from training.search_history import log_search_history
from training.search_options import Objective, SearchOptions, study_sign
from training.settings import Economics, TrainingSettings

log = logging.getLogger("training")

# How a time budget is shared when both candidates are searched: a CatBoost trial costs far
# more than a logistic regression's.
BUDGET_SHARE: dict[CandidateName, float] = {"catboost": 0.8, "logistic_regression": 0.2}
# Trials before the pruner may stop one, and the folds a trial must finish first.
STARTUP_TRIALS = 5
WARMUP_FOLDS = 1


def search(
    names: tuple[CandidateName, ...],
    spec: FeatureSpec,
    train: pd.DataFrame,
    y_train: np.ndarray,
    seed: int,
    settings: TrainingSettings,
    options: SearchOptions,
    experiment_id: str,
) -> dict[str, dict[str, Any]]:
    """The best parameters found for each candidate in `names`, by name."""
    best: dict[str, dict[str, Any]] = {}
    shares = {name: BUDGET_SHARE[name] for name in names}
    for name in names:
        budget = None
        if options.budget_minutes is not None:
            budget = 60 * options.budget_minutes * shares[name] / sum(shares.values())
        best[name] = _study(name, spec, train, y_train, seed, settings, options, budget,
                            experiment_id)  # fmt: skip
    return best


def _study(
    name: CandidateName,
    spec: FeatureSpec,
    train: pd.DataFrame,
    y_train: np.ndarray,
    seed: int,
    settings: TrainingSettings,
    options: SearchOptions,
    budget_s: float | None,
    experiment_id: str,
) -> dict[str, Any]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=STARTUP_TRIALS, n_warmup_steps=WARMUP_FOLDS
        ),
        study_name=f"{name}-search",
    )
    folds = list(
        StratifiedKFold(options.folds, shuffle=True, random_state=seed).split(train, y_train)
    )
    started = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        params = suggest(name, trial)
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"{name} trial {trial.number}", nested=True
        ):
            mlflow.log_params({"candidate": name, "trial": trial.number, **params})
            try:
                scores = _cross_validate(name, params, spec, train, y_train, seed, settings,
                                         folds, options.objective, trial)  # fmt: skip
            except optuna.TrialPruned:
                mlflow.set_tag("state", "pruned")
                raise
            figures = cv_figures(y_train, scores, settings.economics)
            mlflow.log_metrics({f"cv.{key}": value for key, value in figures.items()})
            mlflow.set_tag("state", "complete")
        return figures[options.objective] * study_sign(options.objective)

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == optuna.trial.TrialState.COMPLETE and trial.value is not None:
            shown = _shown(trial.value, options.objective)
        else:
            shown = f"{trial.state.name.lower()} after fold {len(trial.intermediate_values)}"
        log.info(
            "%s trial %d: %s; best %s (trial %d); %.0f s in", name, trial.number, shown,
            _shown(study.best_value, options.objective), study.best_trial.number,
            time.perf_counter() - started,
        )  # fmt: skip
        mlflow.log_metric(
            f"best.cv.{options.objective}", study.best_value * study_sign(options.objective),
            step=trial.number,
        )  # fmt: skip

    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{name} search", nested=True):
        mlflow.log_params({"folds": options.folds, "objective": options.objective,
                           "trials": options.trials, "budget_s": budget_s})  # fmt: skip
        study.optimize(objective, n_trials=options.trials, timeout=budget_s, callbacks=[report])
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not completed:
            raise UserError(
                f"The {name} search finished no trial within its budget; give it more minutes."
            )
        mlflow.log_params({f"best.{key}": value for key, value in study.best_params.items()})
        log_search_history(study, options.objective, seed)
        mlflow.log_metrics({"trials_complete": len(completed),
                            "trials_pruned": len(study.trials) - len(completed)})  # fmt: skip
    log.info("%s search: best of %d trials %s", name, len(study.trials), study.best_params)
    return dict(study.best_params)


def suggest(name: CandidateName, trial: optuna.Trial) -> dict[str, Any]:
    if name == "logistic_regression":
        return {
            "C": trial.suggest_float("C", 1e-3, 1e2, log=True),
            "a": trial.suggest_float("a", 0.1, 20.0, log=True),
            "knots": trial.suggest_int("knots", 3, 10),
        }
    return {
        "depth": trial.suggest_int("depth", 2, 8),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 30.0, log=True),
        "border_count": trial.suggest_categorical("border_count", [32, 64, 128, 254]),
        "one_hot_max_size": trial.suggest_categorical("one_hot_max_size", [2, 4, 10]),
        "auto_class_weights": trial.suggest_categorical(
            "auto_class_weights", ["None", "Balanced", "SqrtBalanced"]
        ),
    }


def cv_figures(y: np.ndarray, scores: np.ndarray, economics: Economics) -> dict[str, float]:
    """Out-of-fold figures: ranking, log-loss, and the campaign profit at the best threshold."""
    _, profits = profit_curve(y, scores, economics)
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "pr_auc": float(average_precision_score(y, scores)),
        "log_loss": float(log_loss(y, np.clip(scores, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "profit": float(np.max(profits)),
    }


def _cross_validate(
    name: CandidateName,
    params: dict[str, Any],
    spec: FeatureSpec,
    train: pd.DataFrame,
    y_train: np.ndarray,
    seed: int,
    settings: TrainingSettings,
    folds: list[tuple[np.ndarray, np.ndarray]],
    objective: Objective,
    trial: optuna.Trial,
) -> np.ndarray:
    """Out-of-fold probabilities; the trial is pruned when its folds so far are hopeless."""
    scores = np.full(len(y_train), np.nan)
    for number, (fit_on, left_out) in enumerate(folds):
        part, rest = train.iloc[fit_on], train.iloc[left_out]
        if name == "logistic_regression":
            fitted = fit_logistic_regression(spec, part, y_train[fit_on], seed, params)
        else:
            fitted = fit_catboost(spec, part, y_train[fit_on], rest, y_train[left_out], seed,
                                  settings.catboost_iterations, settings.catboost_threads,
                                  params)  # fmt: skip
        scores[left_out] = fitted.raw_probability(rest)
        done = ~np.isnan(scores)
        value = cv_figures(y_train[done], scores[done], settings.economics)[objective]
        trial.report(value * study_sign(objective), number)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return scores


def _shown(value: float, objective: Objective) -> str:
    if objective == "log_loss":
        return f"log-loss {value * study_sign(objective):.4f}"
    return f"profit {value:.2f} per customer"
