"""The CLI turns user mistakes into a short message and exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from training.settings import TrainingSettings

ROOT = Path(__file__).resolve().parents[2]


def _run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "no/such/file.csv"], "does not exist"),
        (["train", "--data", "{csv}", "--target", "Churned"], "Columns present: customerID"),
        (["train", "--data", "{csv}", "--id-column", "gender"], "duplicated ids"),
        (["promote"], "exactly one of --version N, --auto or --challenger"),
        (["promote", "--auto", "--if-better"], "--if-better goes with --challenger"),
        (["promote", "--auto", "--alias", "challenger"], "--alias goes with --version"),
        (["challenger", "--since", "yesterday"], "--since: 'yesterday' is not a time"),
        (["train", "--data", "{csv}", "--rows"], "No such option"),
    ],
)
def test_user_errors_exit_2_with_a_message(
    customers_csv: Path, args: list[str], message: str
) -> None:
    result = _run(*(arg.replace("{csv}", str(customers_csv)) for arg in args))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_non_binary_target_is_reported(tmp_path: Path, customers: pd.DataFrame) -> None:
    path = tmp_path / "bad.csv"
    customers.assign(Churn=customers["Churn"].where(customers.index % 100 != 0, "?")).to_csv(
        path, index=False
    )
    result = _run("train", "--data", str(path), "--id-column", "customerID")
    assert result.returncode == 2
    assert "'?' (30)" in result.stderr
    assert "Traceback" not in result.stderr


def test_synth_writes_the_requested_rows(tmp_path: Path) -> None:
    out = tmp_path / "customers.parquet"
    result = _run("synth", "--rows", "1000", "--seed", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert len(pd.read_parquet(out)) == 1000


def test_a_bad_setting_names_its_variable(customers_csv: Path) -> None:
    env = {**os.environ, "CHURN_CANDIDATES": "xgboost"}
    result = _run("train", "--data", str(customers_csv), env=env)
    assert result.returncode == 2
    assert "CHURN_CANDIDATES: Input should be 'logistic_regression' or 'catboost'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("formula", ["9**9**9**9", "1/0", "10**400"])
def test_a_value_formula_that_cannot_be_computed_safely_exits_2_naming_it(
    customers_csv: Path, formula: str
) -> None:
    env = {**os.environ, "CHURN_CUSTOMER_VALUE_FORMULA": formula}
    # Computing 9**9**9**9 would never end; a CLI start on a busy machine takes seconds.
    result = _run("train", "--data", str(customers_csv), env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert f"CHURN_CUSTOMER_VALUE_FORMULA: cannot compute {formula!r}" in result.stderr
    assert "Traceback" not in result.stderr


def test_candidates_are_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_CANDIDATES", " catboost ")
    assert TrainingSettings().candidates == ("catboost",)
    monkeypatch.delenv("CHURN_CANDIDATES")
    assert TrainingSettings().candidates == ("logistic_regression", "catboost")


@pytest.mark.parametrize(
    ("args", "environment", "message"),
    [
        (["experiments", "--experiment", "nope"], {}, "No decision of experiment 'nope'"),
        (["experiments"], {}, "--experiment NAME or CHURN_EXPERIMENT_NAME"),
        (["experiments"], {"CHURN_EXPERIMENT_NAME": "two words"}, "is not a plain word"),
        (
            ["experiments"],
            {"CHURN_EXPERIMENT_NAME": "w", "CHURN_EXPERIMENT_CONTROL_SHARE": "2"},
            "CHURN_EXPERIMENT_CONTROL_SHARE: Input should be less than or equal to 1",
        ),
        (["train", "--data", "{csv}", "--uplift-from", "nope"], {},
         "No decision of experiment 'nope'"),
    ],
)  # fmt: skip
def test_experiment_mistakes_exit_2_naming_them(
    customers_csv: Path, tmp_path: Path, args: list[str], environment: dict[str, str], message: str
) -> None:
    env = {
        **os.environ,
        "CHURN_HISTORY_URL": f"sqlite:///{tmp_path / 'history.db'}",
        "CHURN_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        **environment,
    }
    result = _run(*(arg.replace("{csv}", str(customers_csv)) for arg in args), env=env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tune", "--budget-minutes", "0"], "--budget-minutes: 0 is not above 0"),
        (["--tune", "--trials", "-1"], "--trials: -1 is not 1 or more"),
        (["--trials", "3"], "--budget-minutes and --trials go with --tune"),
        (["--tune", "--tune-objective", "auc"], "--tune-objective: 'auc' is not profit or"),
        (["--tune", "--folds", "8", "--rare"], "at least 8 rows of each class in the training"),
    ],
)  # fmt: skip
def test_search_mistakes_exit_2_naming_them(
    customers: pd.DataFrame, tmp_path: Path, args: list[str], message: str
) -> None:
    path = tmp_path / "customers.csv"
    table = customers.head(400)
    if "--rare" in args:
        args = [arg for arg in args if arg != "--rare"]
        # The fewest churners a table may have (10): 6 of them land in the training split.
        table = table.assign(Churn=["Yes"] * 10 + ["No"] * (len(table) - 10))
    table.to_csv(path, index=False)
    env = {**os.environ, "CHURN_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    result = _run("train", "--data", str(path), "--id-column", "customerID", *args, env=env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
