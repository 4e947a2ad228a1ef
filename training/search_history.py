"""What a finished search leaves on its MLflow run besides the best parameters: every trial in a
table, the best value after each trial as a chart, and how much each parameter mattered."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import mlflow
import optuna
import pandas as pd

from training import plots
from training.search_options import Objective, study_sign

# fANOVA needs trials that differ in value; with fewer, the importances would be noise.
IMPORTANCE_MIN_TRIALS = 5
# Optuna's default of 64 trees took 13.5 s for 250 trials on 2 cores; 16 took 1.9 s and gave
# the same importances to two decimals.
IMPORTANCE_TREES = 16


def trials_table(study: optuna.Study, objective: Objective) -> pd.DataFrame:
    """One row per trial: its state, its cross-validated value in the objective's own terms
    (log-loss as a loss), its seconds, and its parameters."""
    rows = [
        {
            "trial": trial.number,
            "state": trial.state.name.lower(),
            objective: None if trial.value is None else trial.value * study_sign(objective),
            "seconds": None if trial.duration is None else trial.duration.total_seconds(),
            **trial.params,
        }
        for trial in study.trials
    ]
    return pd.DataFrame(rows)


def log_search_history(study: optuna.Study, objective: Objective, seed: int) -> None:
    """On the active run: `search/trials.csv`, `search/history.png`, and a metric
    `importance.<parameter>` each when enough trials completed with different values."""
    table = trials_table(study, objective)
    mlflow.log_text(table.to_csv(index=False), "search/trials.csv")
    complete = table[table["state"] == "complete"]
    figure = plots.search_history_figure(
        complete["trial"].to_numpy(),
        complete[objective].to_numpy(),
        objective,
        lower_is_better=study_sign(objective) < 0,
        title=study.study_name,
    )
    mlflow.log_figure(figure, "search/history.png")
    plt.close(figure)
    if len(complete) >= IMPORTANCE_MIN_TRIALS and complete[objective].nunique() > 1:
        importances = optuna.importance.get_param_importances(
            study,
            evaluator=optuna.importance.FanovaImportanceEvaluator(
                n_trees=IMPORTANCE_TREES, seed=seed
            ),
        )
        mlflow.log_metrics(
            {f"importance.{name}": value for name, value in importances.items()
             if math.isfinite(value)}
        )  # fmt: skip
