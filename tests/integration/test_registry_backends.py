"""Train → register → promote → import, against SQLite, PostgreSQL and an HTTP tracking server."""

from __future__ import annotations

from pathlib import Path

import bentoml
import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

from registry.client import champion
from serving.model.champion import import_champion, model_description
from serving.settings import ServingSettings
from tests.integration.conftest import quick_settings, signed_in, train_quickly
from training.promote import promote_auto, promote_version

pytestmark = pytest.mark.integration


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("http", marks=pytest.mark.postgres),
    ]
)
def tracking_uri(request: pytest.FixtureRequest) -> str:
    fixture = {"sqlite": "sqlite_uri", "postgresql": "postgres_uri", "http": "mlflow_server_uri"}
    return str(request.getfixturevalue(fixture[request.param]))


def test_the_whole_flow_on_a_real_backend(
    tracking_uri: str,
    customers_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_name = f"churn_{tmp_path.name[-12:].replace('-', '_')}"
    settings = quick_settings(tracking_uri, tmp_path / "artifacts", model_name=model_name)

    first = train_quickly(settings, customers_csv)
    client = MlflowClient(tracking_uri, tracking_uri)
    version = client.get_model_version(model_name, first.version)
    assert float(version.tags["test.roc_auc"]) == pytest.approx(
        next(r for r in first.results if r.candidate.name == first.winner).test.roc_auc, rel=1e-5
    )
    runs = client.search_runs(
        [client.get_experiment_by_name(settings.experiment).experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{first.parent_run_id}'",
    )
    assert {run.data.params["candidate"] for run in runs} == {"logistic_regression", "catboost"}
    plots = {a.path for a in client.list_artifacts(first.model_run_id, "plots")}
    assert plots == {
        f"plots/{name}.png"
        for name in (
            "roc", "precision_recall", "calibration", "reliability_validation", "lift_gain",
            "feature_importance",
        )
    }  # fmt: skip

    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{first.version}")
    probabilities = model.predict(model.input_example)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()

    assert promote_auto(settings).decision == "first"
    assert str(champion(client, model_name, "champion").version) == first.version

    second = train_quickly(settings, customers_csv)
    same = {r.candidate.name: r.test for r in second.results}
    assert all(same[r.candidate.name] == r.test for r in first.results), (
        "same data and seed, same metrics"
    )
    kept = promote_auto(settings)
    assert kept.decision == "kept"  # equal profit is not a win
    tags = client.get_model_version(model_name, second.version).tags
    assert tags["promotion.decision"] == "kept"
    assert float(tags["promotion.challenger_profit_per_customer"]) == pytest.approx(
        float(tags["promotion.champion_profit_per_customer"])
    )

    promote_version(second.version, settings)
    assert str(champion(client, model_name, "champion").version) == second.version

    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    imported = import_champion(
        ServingSettings(tracking_uri=tracking_uri, model_name=model_name)  # type: ignore[call-arg]
    )
    assert imported.info.labels["version"] == second.version
    assert imported.info.labels["run_id"] == second.model_run_id
    assert model_description(imported)["feature_spec"]["id_column"] == "customerID"
    assert (
        bentoml.mlflow.load_model(imported).predict(model.input_example).shape
        == probabilities.shape
    )


@pytest.mark.postgres
def test_only_a_user_with_manage_permission_can_move_the_alias(
    mlflow_server_uri: str, customers_csv: Path, tmp_path: Path
) -> None:
    model_name = f"churn_auth_{tmp_path.name[-8:].replace('-', '_')}"
    settings = quick_settings(mlflow_server_uri, tmp_path / "artifacts", model_name=model_name)
    trained = train_quickly(settings, customers_csv)
    auth = get_app_client("basic-auth", tracking_uri=mlflow_server_uri)
    reader = (f"reader_{tmp_path.name[-8:]}", f"pw-{tmp_path.name}")
    auth.create_user(*reader)
    auth.grant_user_permission(reader[0], "registered_model", model_name, "READ")

    for username, password, status in ((None, None, "401"), (*reader, "403")):
        with signed_in(username, password):
            client = MlflowClient(mlflow_server_uri, mlflow_server_uri)
            with pytest.raises(MlflowException, match=status):
                client.set_registered_model_alias(model_name, "champion", trained.version)
    with signed_in(*reader):  # reading is what the service needs, and it may
        version = MlflowClient(mlflow_server_uri, mlflow_server_uri).get_model_version(
            model_name, trained.version
        )
        assert version.run_id == trained.model_run_id
    assert (
        champion(MlflowClient(mlflow_server_uri, mlflow_server_uri), model_name, "champion") is None
    )
