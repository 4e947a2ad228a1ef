"""Prediction history end to end, on SQLite and on PostgreSQL: `bentoml serve` with 2 workers
records what it answers, reads it back over HTTP, and realised performance is computed from
outcomes loaded with the CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from sklearn.metrics import average_precision_score, roc_auc_score

from churn.playbook import NO_ACTION
from loadtests.metrics_page import metric_total
from loadtests.servers import free_port
from tests.integration.conftest import (
    BIN,
    Champion,
    bentoml_serve,
    fresh_postgres_database,
    run_checked,
)
from training.evaluate import campaign_profit, top_decile_lift
from training.settings import Economics

pytestmark = pytest.mark.integration
CUSTOMERS = 300
PER_REQUEST = 10
EXPERIMENT = "winter-calls"


@dataclass(frozen=True)
class Recording:
    url: str
    env: dict[str, str]
    history_url: str
    folder: Path


def _serve(
    stack: ExitStack, folder: Path, champion: Champion, history_url: str, **env: str
) -> Recording:
    port = free_port()
    environment = {
        **champion.env,
        "CHURN_PORT": str(port),
        "CHURN_WORKERS": "2",
        "CHURN_HISTORY_URL": history_url,
        "CHURN_HISTORY_FLUSH_SECONDS": "0.1",
        **env,
    }
    serving = stack.enter_context(bentoml_serve(environment, folder / "serve.log"))
    return Recording(serving.url, environment, history_url, folder)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def recording(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, champion: Champion
) -> Iterator[Recording]:
    folder = tmp_path_factory.mktemp(f"history-{request.param}")
    with ExitStack() as stack:
        if request.param == "postgresql":
            url = stack.enter_context(fresh_postgres_database())
        else:
            url = f"sqlite:///{folder / 'history.db'}"
        yield _serve(
            stack, folder, champion, url, CHURN_HISTORY_FEATURE_SAMPLE="0.5",
            CHURN_EXPERIMENT_NAME=EXPERIMENT, CHURN_EXPERIMENT_CONTROL_SHARE="0.3",
        )  # fmt: skip


def _known_customers(customers: pd.DataFrame) -> pd.DataFrame:
    return customers.tail(CUSTOMERS).reset_index(drop=True)


def _predict(url: str, table: pd.DataFrame, request_prefix: str) -> list[dict[str, Any]]:
    records = json.loads(table.drop(columns=["Churn"]).to_json(orient="records"))
    answers = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for start in range(0, len(records), PER_REQUEST):
            response = client.post(
                "/predict",
                json={"customers": records[start : start + PER_REQUEST]},
                headers={"x-request-id": f"{request_prefix}-{start}"},
            )
            assert response.status_code == 200, response.text
            answers.extend(response.json())
    return answers


def _history(url: str, customer_id: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{url}/customers/{customer_id}/history", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait_for_history(url: str, customer_id: str, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = _history(url, customer_id, limit=count)
        if len(page["scores"]) >= count:
            return page
        time.sleep(0.2)
    raise AssertionError(f"{customer_id} never had {count} recorded scores")


def test_answers_are_recorded_read_back_and_judged_by_the_outcomes(
    recording: Recording, customers: pd.DataFrame, champion: Champion
) -> None:
    known = _known_customers(customers)
    first = _predict(recording.url, known, "first")
    second = _predict(recording.url, known, "second")
    assert first == second, "the same model gave the same customers other answers"
    ids = known["customerID"].astype(str).tolist()
    for customer_id in (ids[0], ids[-1]):
        _wait_for_history(recording.url, customer_id, 2)

    for index in (0, 123, CUSTOMERS - 1):
        page = _history(recording.url, ids[index])
        newest, older = page["scores"]
        assert newest["request_id"] == f"second-{index // PER_REQUEST * PER_REQUEST}"
        assert older["request_id"] == f"first-{index // PER_REQUEST * PER_REQUEST}"
        assert newest["scored_at"] > older["scored_at"]
        answer = second[index]
        for field in ("churn_probability", "churn", "risk_tier", "decile", "segment", "action"):
            assert newest[field] == answer[field], field
        assert newest["model_version"] == champion.version and newest["source"] == "api"
    paged = _history(recording.url, ids[5], limit=1)
    assert paged["next_before"] == paged["scores"][0]["scored_at"]
    rest = _history(recording.url, ids[5], limit=1, before=paged["next_before"])
    assert rest["scores"][0]["request_id"] == "first-0" and rest["next_before"] is None

    summary = httpx.get(f"{recording.url}/history/summary", timeout=10).json()
    [today] = summary["days"]
    assert today["scored"] == 2 * CUSTOMERS
    assert today["by_model_version"] == {champion.version: 2 * CUSTOMERS}
    assert sum(today["by_risk_tier"].values()) == 2 * CUSTOMERS

    labels = recording.folder / "labels.csv"
    observed = datetime.now(UTC) + timedelta(days=1)
    pd.DataFrame(
        {"customerID": ids, "churned": known["Churn"], "seen": observed.isoformat()}
    ).to_csv(labels, index=False)
    python = str(BIN / "python")
    loaded = run_checked(
        [python, "-m", "training", "outcomes", "--data", str(labels), "--id-column",
         "customerID", "--target", "churned", "--observed-at", "seen"],
        recording.env,
    )  # fmt: skip
    assert f"Loaded {CUSTOMERS} outcomes; rejected 0 rows." in loaded.stdout
    out = recording.folder / "performance"
    run_checked([python, "-m", "training", "performance", "--out", str(out)], recording.env)
    [version] = json.loads((out / "performance.json").read_text())["versions"]

    churned = (known["Churn"] == "Yes").to_numpy(dtype=np.int64)
    scores = np.array([answer["churn_probability"] for answer in second])
    decided = np.array([answer["churn"] for answer in second])
    targeted = np.array([answer["action"] != NO_ACTION for answer in second])
    assert version["model_version"] == champion.version
    assert version["customers"] == CUSTOMERS
    assert version["roc_auc"] == pytest.approx(roc_auc_score(churned, scores))
    assert version["pr_auc"] == pytest.approx(average_precision_score(churned, scores))
    assert version["precision"] == pytest.approx(churned[decided].mean())
    assert version["recall"] == pytest.approx(decided[churned == 1].mean())
    assert version["top_decile_lift"] == pytest.approx(top_decile_lift(churned, scores))
    assert version["profit_per_customer"] == pytest.approx(
        campaign_profit(churned, targeted, Economics())
    )
    assert (out / "performance.html").read_text().count("<tr>") > 10

    client = mlflow.MlflowClient(champion.tracking_uri, champion.tracking_uri)
    tags = client.get_model_version(champion.model_name, champion.version).tags
    assert float(tags["realised.roc_auc"]) == pytest.approx(version["roc_auc"], rel=1e-5)
    run_id = client.get_model_version(champion.model_name, champion.version).run_id
    assert "realised/performance.html" in [
        a.path for a in client.list_artifacts(run_id, "realised")
    ]


def test_an_experiment_holds_back_its_control_group_and_measures_the_uplift(
    recording: Recording, customers: pd.DataFrame, champion: Champion
) -> None:
    known = _known_customers(customers)
    answers = _predict(recording.url, known, "experiment")
    groups = {answer["customer_id"]: answer["treatment"] for answer in answers}
    control = [answer for answer in answers if answer["treatment"] == "control"]
    treated = [answer for answer in answers if answer["treatment"] == "treated"]
    assert control and treated
    for answer in control:
        assert answer["action"] == NO_ACTION and answer["expected_value"] == 0
        assert answer["held_back_action"] not in (None, NO_ACTION)
    assert all(answer["action"] != NO_ACTION for answer in treated)
    assert {answer["experiment"] for answer in control + treated} == {EXPERIMENT}
    outside = [answer for answer in answers if answer["treatment"] is None]
    assert all(answer["action"] == NO_ACTION and answer["experiment"] is None for answer in outside)
    assert 0.15 < len(control) / (len(control) + len(treated)) < 0.45
    # A customer stays in its group: the same answers for the same customers again.
    assert _predict(recording.url, known, "experiment-again") == answers
    newest = _wait_for_history(recording.url, control[0]["customer_id"], 1)["scores"][0]
    assert newest["treatment"] == "control"
    assert newest["held_back_action"] == control[0]["held_back_action"]

    labels = recording.folder / "experiment-labels.csv"
    observed = datetime.now(UTC) + timedelta(days=2)
    pd.DataFrame(
        {"customerID": known["customerID"], "churned": known["Churn"], "seen": observed.isoformat()}
    ).to_csv(labels, index=False)
    python = str(BIN / "python")
    run_checked(
        [python, "-m", "training", "outcomes", "--data", str(labels), "--id-column",
         "customerID", "--target", "churned", "--observed-at", "seen"],
        recording.env,
    )  # fmt: skip
    out = recording.folder / "experiments"
    done = run_checked(
        [python, "-m", "training", "experiments", "--experiment", EXPERIMENT, "--out", str(out),
         "--min-outcomes", "5"],
        recording.env,
    )  # fmt: skip
    assert f"{len(outside):,} customers with an outcome were never assigned" in (done.stdout)
    report = json.loads((out / f"{EXPERIMENT}.json").read_text())
    assert report["assigned"] == {"control": len(control), "treated": len(treated)}
    assert report["with_outcome"] == len(control) + len(treated)
    churned = dict(zip(known["customerID"], known["Churn"] == "Yes", strict=True))
    for row in report["uplifts"]:
        if row["segment"] != "all":
            continue
        arm = [a for a in answers if (a["held_back_action"] or a["action"]) == row["action"]]
        in_control = [a["customer_id"] for a in arm if groups[a["customer_id"]] == "control"]
        in_treated = [a["customer_id"] for a in arm if groups[a["customer_id"]] == "treated"]
        assert (row["control"], row["treated"]) == (len(in_control), len(in_treated))
        if in_control and in_treated:
            expected = np.mean([churned[c] for c in in_control]) - np.mean(
                [churned[c] for c in in_treated]
            )
            assert row["uplift"] == pytest.approx(expected)
    client = mlflow.MlflowClient(champion.tracking_uri, champion.tracking_uri)
    tags = client.get_model_version(champion.model_name, champion.version).tags
    assert any(key.startswith(f"experiment.{EXPERIMENT}.") for key in tags), tags


def test_a_share_of_rows_keep_their_features_for_drift(
    recording: Recording, customers: pd.DataFrame
) -> None:
    """On rows of its own, so it passes or fails alone, whatever ran before it."""
    sent = 400
    _predict(recording.url, customers.head(sent), "feature-share")
    query = (
        "SELECT count(*), count(features) FROM predictions WHERE request_id LIKE 'feature-share-%'"
    )
    deadline = time.monotonic() + 30
    while True:
        total, with_features = _count(recording.history_url, query)
        if total >= sent or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert total == sent
    assert 0.3 * total < with_features < 0.7 * total


def _count(url: str, query: str) -> tuple[int, int]:
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            return tuple(connection.execute(query).fetchone())  # type: ignore[return-value]
    with psycopg.connect(url) as connection:
        return tuple(connection.execute(query).fetchone())  # type: ignore[arg-type, return-value]


def test_bad_history_queries_get_a_400_naming_the_parameter(recording: Recording) -> None:
    for path, named in (
        ("/customers/x/history?limit=0", "limit"),
        ("/customers/x/history?before=yesterday", "before"),
        ("/history/summary?since=soon", "since"),
        ("/history/summary?since=2026-02-02&until=2026-02-01", "since"),
        ("/history/summary?until=9999-12-31", "until"),
        ("/history/summary?until=0001-01-05", "until"),
        ("/customers/x/history?before=0001-01-01T00:00:00%2B05:00", "before"),
        ("/customers/x/history?before=9999-12-31T23:59:59-05:00", "before"),
    ):
        response = httpx.get(recording.url + path, timeout=10)
        assert response.status_code == 400, path
        assert response.json()["error"].startswith(named), response.text


def _count_rows(database: str) -> int:
    with psycopg.connect(database) as connection:
        row = connection.execute("SELECT count(*) FROM predictions").fetchone()
    assert row is not None
    return int(row[0])


def _database_down(database: str, down: bool) -> None:
    name = database.rsplit("/", 1)[1]
    admin = database.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(not down).lower()}")
        if down:
            # With a timeout it returns once each backend is gone, so no write can still land.
            connection.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


@pytest.mark.postgres
def test_with_the_database_gone_predict_still_answers_and_every_row_is_written_or_counted(
    tmp_path: Path, customers: pd.DataFrame, champion: Champion
) -> None:
    """The writer's connection is killed and the database refuses new ones while requests keep
    coming: /predict answers 200 throughout, rows past each worker's buffer are dropped and
    counted, and once the database is back every other row is in the table."""
    buffer_rows = 200
    with ExitStack() as stack:
        database = stack.enter_context(fresh_postgres_database())
        served = _serve(
            stack, tmp_path, champion, database, CHURN_HISTORY_BUFFER_ROWS=str(buffer_rows)
        )
        table = _known_customers(customers)
        _predict(served.url, table.head(PER_REQUEST), "before")
        _wait_for_history(served.url, str(table["customerID"].iloc[0]), 1)
        _database_down(database, down=True)
        stack.callback(_database_down, database, down=False)
        for round_ in range(4):  # 1,200 customers: more than both workers' buffers hold
            _predict(served.url, table, f"during-{round_}")
        dropped = metric_total(served.url, "churn_history_dropped_total")
        assert dropped >= 4 * CUSTOMERS - 2 * buffer_rows
        _database_down(database, down=False)
        sent = PER_REQUEST + 4 * CUSTOMERS
        deadline = time.monotonic() + 30
        while _count_rows(database) + dropped < sent and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _count_rows(database) + dropped == sent
        assert metric_total(served.url, "churn_history_write_errors_total") >= 1


def test_on_sigterm_each_worker_writes_the_rows_it_still_holds(
    tmp_path: Path, champion: Champion, customers: pd.DataFrame
) -> None:
    """A flush interval of an hour: nothing is written while the service runs, so every row
    in the history was written by the shutdown of the worker that answered it."""
    history_url = f"sqlite:///{tmp_path / 'history.db'}"
    env = {
        **champion.env,
        "CHURN_PORT": str(free_port()),
        "CHURN_WORKERS": "2",
        "CHURN_HISTORY_URL": history_url,
        "CHURN_HISTORY_FLUSH_SECONDS": "3600",
    }
    records = json.loads(customers.drop(columns=["Churn"]).head(40).to_json(orient="records"))
    with bentoml_serve(env, tmp_path / "serve.log") as serving:
        for record in records:  # a new connection each, so both workers answer some
            response = httpx.post(
                f"{serving.url}/predict", json={"customers": [record]}, timeout=30
            )
            assert response.status_code == 200
        assert _count_recorded(history_url) == 0
        serving.process.terminate()
        serving.process.wait(timeout=60)
    log = (tmp_path / "serve.log").read_text()
    assert _count_recorded(history_url) == len(records), log[-3000:]


def _count_recorded(history_url: str) -> int:
    engine = sa.create_engine(history_url)
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        if "predictions" not in inspector.get_table_names():
            return 0
        return int(connection.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one())
