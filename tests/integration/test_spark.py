"""The Spark job on a shared local[2] session: the same decisions as `python -m scoring`, bad
rows kept, one version per job, output that appears whole or not at all, and recording that a
failed or repeated job never doubles."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from churn.errors import UserError
from churn.experiment import Experiment
from history.settings import HistorySettings
from history.store import History
from registry.settings import RegistrySettings
from scoring.cli import load_churn_model
from scoring.score_file import PREDICTION_COLUMNS, score_file
from tests.integration.conftest import ROOT, Champion
from training.synth import synthesize

pytestmark = [pytest.mark.integration, pytest.mark.spark]

ROWS = 10_000
BAD = {"tenure": "ten", "MonthlyCharges": "lots"}
EXPERIMENT = Experiment("spark-trial", 0.3)
# A customer whose history insert fails once, the way a database can fail mid-job.
POISONED = "POISON-0001"


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    from scoring.spark.session import ARROW_BATCH, spark_session

    # Small partitions and batches, so 10,000 rows make several tasks of several batches.
    conf = {
        ARROW_BATCH: "1000",
        "spark.sql.files.maxPartitionBytes": "400000",
        "spark.ui.enabled": "false",
    }
    session = spark_session("local[2]", "churn tests", conf)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def customers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    table = synthesize(ROWS, seed=11).astype(str)
    table.loc[17, "tenure"] = BAD["tenure"]
    table.loc[4242, "MonthlyCharges"] = BAD["MonthlyCharges"]
    table.loc[7000, "customerID"] = POISONED
    table.loc[99, "PaymentMethod"] = "Bitcoin"  # a category no model has seen: scored
    path = tmp_path_factory.mktemp("spark-in") / "customers.csv"
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def registry(champion: Champion) -> RegistrySettings:
    return RegistrySettings(tracking_uri=champion.tracking_uri, model_name=champion.model_name)


@pytest.fixture(scope="module")
def expected(
    registry: RegistrySettings,
    champion: Champion,
    customers_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> pd.DataFrame:
    """`python -m scoring` on the same file."""
    model = load_churn_model(f"models:/{champion.model_name}/{champion.version}", registry)
    out = tmp_path_factory.mktemp("in-process") / "scored.parquet"
    score_file(model, customers_file, out, with_reasons=True, experiment=EXPERIMENT)
    return pd.read_parquet(out).set_index("customerID").sort_index()


def test_a_job_gives_the_decisions_of_the_in_process_scorer(
    spark: SparkSession,
    registry: RegistrySettings,
    champion: Champion,
    customers_file: Path,
    expected: pd.DataFrame,
    tmp_path: Path,
) -> None:
    from scoring.spark.job import JobOptions, run_job

    out = tmp_path / "scored"
    result = run_job(
        JobOptions(
            str(customers_file),
            str(out),
            partition_by=("Contract",),
            reasons=True,
            keep_inputs=True,
            experiment=EXPERIMENT,
        ),
        registry,
    )

    got = pd.read_parquet(out).set_index("customerID").sort_index()
    # A customer gets the same experiment group on Spark as in one process.
    assert set(got["treatment"].dropna()) == {"treated", "control"}
    assert len(got) == ROWS
    assert got["model_version"].unique().tolist() == [champion.version]
    assert got["model_name"].unique().tolist() == [champion.model_name]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "Contract=Month-to-month", "Contract=One year", "Contract=Two year", "_summary",
    ]  # fmt: skip
    assert (out / "_SUCCESS").exists()
    np.testing.assert_allclose(
        got["churn_probability"], expected["churn_probability"], rtol=0, atol=1e-9
    )
    for column in [c for c in PREDICTION_COLUMNS if c != "churn_probability"]:
        assert _values(got[column]) == _values(expected[column]), column
    for column in expected.columns.difference([*PREDICTION_COLUMNS, "Contract"]):
        assert got[column].tolist() == expected[column].tolist(), column
    assert got["Contract"].astype(str).tolist() == expected["Contract"].tolist()

    assert sorted(got["error"].dropna()) == [
        f"MonthlyCharges: {BAD['MonthlyCharges']!r} is not a number",
        f"tenure: {BAD['tenure']!r} is not a number",
    ]
    summary = json.loads((out / "_summary" / "summary.json").read_text())
    assert summary == result.summary
    assert summary["customers_scored"] == ROWS - 2
    assert summary["rows_rejected"] == 2
    assert summary["rejection_reasons"] == {
        "tenure: not a number": 1, "MonthlyCharges: not a number": 1,
    }  # fmt: skip
    assert summary["by_risk_tier"] == expected["risk_tier"].value_counts().sort_index().to_dict()
    assert summary["by_action"] == expected["action"].value_counts().to_dict()
    assert summary["model_version"] == champion.version


def _values(column: pd.Series) -> list[object]:
    """The column's values with every kind of missing (None, NaN, NA) as None."""
    return [None if pd.isna(value) else value for value in column.astype(object)]


def test_a_failed_job_leaves_no_output_and_its_rerun_records_each_row_once(
    spark: SparkSession, registry: RegistrySettings, customers_file: Path, tmp_path: Path
) -> None:
    from scoring.spark.job import JobOptions, run_job

    database = tmp_path / "history.db"
    history = HistorySettings(url=f"sqlite:///{database}", feature_sample=0)
    History.open(history)
    with sqlite3.connect(database) as db:
        db.execute(
            "CREATE TRIGGER poisoned BEFORE INSERT ON predictions "
            f"WHEN NEW.customer_id = '{POISONED}' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    out = tmp_path / "scored"
    options = JobOptions(str(customers_file), str(out), job_id="nightly-7")

    with pytest.raises(UserError, match=r"wrote nothing to .*disk full"):
        run_job(options, registry, history)
    assert not out.exists()
    assert not any("staging" in p.name for p in tmp_path.iterdir())
    recorded_before = _recorded(database, "nightly-7")
    assert 0 < sum(recorded_before.values()) < ROWS - 2

    with sqlite3.connect(database) as db:
        db.execute("DROP TRIGGER poisoned")
    run_job(options, registry, history)
    recorded = _recorded(database, "nightly-7")
    assert len(recorded) == ROWS - 2
    assert set(recorded.values()) == {1}

    run_job(replace(options, overwrite=True), registry, history)
    assert _recorded(database, "nightly-7") == recorded
    assert pd.read_parquet(out)["customerID"].nunique() == ROWS


def _recorded(database: Path, job_id: str) -> dict[str, int]:
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT customer_id, COUNT(*) FROM predictions "
            "WHERE request_id = ? AND source = 'batch' GROUP BY customer_id",
            (job_id,),
        ).fetchall()
    return dict(rows)


def _write_csv(table: pd.DataFrame, path: Path) -> str:
    table.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing column", "lacks the feature columns tenure"),
        ("no such path", "Cannot read .*nowhere"),
        ("empty table", "has no rows"),
        ("alias not set", "alias 'nobody' points at no version"),
        ("unknown partition column", "--partition-by region: no such input column"),
        ("existing output", "exists; pass --overwrite"),
    ],
)
def test_bad_input_is_named_before_any_task_runs(
    spark: SparkSession,
    registry: RegistrySettings,
    customers_file: Path,
    tmp_path: Path,
    case: str,
    message: str,
) -> None:
    from scoring.spark.job import JobOptions, run_job

    table = pd.read_csv(customers_file, dtype=str, nrows=50)
    data, out = str(customers_file), tmp_path / "scored"
    options: dict[str, object] = {}
    if case == "missing column":
        data = _write_csv(table.drop(columns="tenure"), tmp_path / "in.csv")
    elif case == "no such path":
        data = str(tmp_path / "nowhere.parquet")
    elif case == "empty table":
        data = _write_csv(table.head(0), tmp_path / "in.csv")
    elif case == "alias not set":
        options["model_uri"] = f"models:/{registry.model_name}@nobody"
    elif case == "unknown partition column":
        options["partition_by"] = ("region",)
    else:
        out.mkdir()
        (out / "kept.txt").write_text("old")

    with pytest.raises(UserError, match=message):
        run_job(JobOptions(data, str(out), **options), registry)  # type: ignore[arg-type]

    assert not any("staging" in p.name for p in tmp_path.iterdir())
    if case == "existing output":
        assert [p.name for p in out.iterdir()] == ["kept.txt"]
    else:
        assert not out.exists()


def test_parquet_in_partitioned_parquet_out_from_the_command_line(
    spark: SparkSession,
    champion: Champion,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scoring.cli import main

    table = synthesize(2_000, seed=5)
    table["region"] = np.where(table.index % 3 == 0, "north", "south")
    data = tmp_path / "customers.parquet"
    table.to_parquet(data, index=False)
    out = tmp_path / "scored"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion.tracking_uri)
    command = ["scoring", "spark", "--data", str(data), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", [*command, "--partition-by", "region"])
    with pytest.raises(SystemExit) as exit_code:
        main()
    assert exit_code.value.code == 0

    assert f"Scored 2,000 customers and rejected 0 rows with churn version {champion.version}" in (
        capsys.readouterr().out
    )
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "_SUCCESS", "_summary", "region=north", "region=south",
    ]  # fmt: skip
    scored = pd.read_parquet(out)
    assert len(scored) == 2_000
    # By default the output keeps of the input only the id and the partition columns.
    assert list(scored.columns) == [
        "customerID", *PREDICTION_COLUMNS, "model_name", "model_version", "region",
    ]  # fmt: skip
    assert sorted(scored["customerID"]) == sorted(table["customerID"])

    monkeypatch.setattr(sys, "argv", command)  # --out exists now
    with pytest.raises(SystemExit) as exit_code:
        main()
    assert exit_code.value.code == 2
    assert capsys.readouterr().err.strip().endswith("exists; pass --overwrite to replace it.")


def test_a_table_name_is_read_from_the_catalog(
    spark: SparkSession, registry: RegistrySettings, tmp_path: Path
) -> None:
    from scoring.spark.job import JobOptions, run_job

    spark.createDataFrame(synthesize(300, seed=9).astype(str)).createOrReplaceTempView("crm_base")
    out = tmp_path / "scored"

    result = run_job(JobOptions("crm_base", str(out)), registry)

    assert result.summary["customers_scored"] == 300
    assert len(pd.read_parquet(out)) == 300


def test_spark_submit_runs_the_entry_file_with_the_packaged_code(
    champion: Champion, tmp_path: Path
) -> None:
    """The cluster path: the code comes from a --py-files zip, not from the checkout."""
    from scoring.spark.session import project_zip

    package = project_zip(ROOT, tmp_path / "churn-project.zip")
    data = tmp_path / "customers.csv"
    synthesize(500, seed=3).to_csv(data, index=False)
    out = tmp_path / "scored"
    env = {**champion.env, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": ""}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]",
            "--py-files", str(package), str(ROOT / "scoring" / "spark" / "submit.py"),
            "--data", str(data), "--out", str(out),
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Scored 500 customers and rejected 0 rows with churn version {champion.version}" in (
        done.stdout
    )
    assert len(pd.read_parquet(out)) == 500
