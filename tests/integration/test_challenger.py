"""Champion and challenger on live traffic: `bentoml serve` with 2 workers, a registry with a
champion (logistic regression) and a challenger (CatBoost), in shadow mode, then canary mode."""

from __future__ import annotations

import json
import os
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from loadtests.metrics_page import metric_total
from loadtests.servers import free_port
from monitoring.dashboard import CHALLENGER_METRIC, queries
from registry.client import champion, connect, set_alias
from tests.integration.conftest import (
    BIN,
    Serving,
    bentoml_serve,
    quick_settings,
    run_checked,
    train_quickly,
)
from training.promote import promote_version

pytestmark = pytest.mark.integration
CUSTOMERS = 60
PER_REQUEST = 6
CANARY_SHARE = 0.3


@dataclass(frozen=True)
class Registry:
    env: dict[str, str]
    champion: str
    challenger: str


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, customers_csv: Path) -> Registry:
    folder = tmp_path_factory.mktemp("challenger")
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    settings = quick_settings(
        tracking_uri, folder / "artifacts", candidates=("logistic_regression",)
    )
    champion = train_quickly(settings, customers_csv)
    promote_version(champion.version, settings)
    rival_settings = quick_settings(tracking_uri, folder / "artifacts", candidates=("catboost",))
    challenger = train_quickly(rival_settings, customers_csv)
    set_alias(connect(settings), settings.model_name, "challenger", challenger.version)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "BENTOML_HOME": str(folder / "bento"),
        "CHURN_WORKERS": "2",
        "CHURN_FOLLOW_STAGGER_S": "0",
        "CHURN_CHALLENGER_ALIAS": "challenger",
    }
    run_checked([str(BIN / "python"), "-m", "serving", "import-champion"], env)
    return Registry(env, champion.version, challenger.version)


@contextmanager
def served(registry: Registry, folder: Path, mode: str, **settings: str) -> Iterator[Serving]:
    """The service in `mode` once both workers score with the challenger; its history is
    complete once the block has ended (the service writes the rest when it stops)."""
    env = {
        **registry.env,
        "CHURN_PORT": str(free_port()),
        "CHURN_CHALLENGER_MODE": mode,
        "CHURN_HISTORY_URL": f"sqlite:///{folder / 'history.db'}",
        **settings,
    }
    with bentoml_serve(env, folder / "serve.log") as serving:
        deadline = time.monotonic() + 120
        while metric_total(serving.url, "churn_challenger_reload_total", result="swapped") < 2:
            assert time.monotonic() < deadline, serving.log.read_text()[-3000:]
            time.sleep(0.5)
        yield serving


def _records(customers: pd.DataFrame) -> list[dict[str, object]]:
    frame = customers.drop(columns=["Churn"]).head(CUSTOMERS)
    return list(json.loads(frame.to_json(orient="records")))


def _predict(serving: Serving, records: list[dict[str, object]]) -> list[dict[str, object]]:
    answers = []
    for start in range(0, len(records), PER_REQUEST):
        body = {"customers": records[start : start + PER_REQUEST]}
        response = httpx.post(f"{serving.url}/predict", json=body, timeout=30)
        assert response.status_code == 200, response.text
        answers += response.json()
    return answers


def _rows(folder: Path) -> dict[str, list[tuple[str, bool, str]]]:
    """Each customer's history rows: (role, shadow, model version)."""
    engine = sa.create_engine(f"sqlite:///{folder / 'history.db'}")
    query = "SELECT customer_id, role, shadow, model_version FROM predictions"
    rows: dict[str, list[tuple[str, bool, str]]] = defaultdict(list)
    with engine.connect() as connection:
        for customer, role, shadow, version in connection.execute(sa.text(query)):
            rows[customer].append((role, bool(shadow), version))
    engine.dispose()
    return rows


def _comparison(serving: Serving, customers: int) -> dict[str, Any]:
    """GET /challenger once the history holds both arms of `customers` customers."""
    deadline = time.monotonic() + 30
    while True:
        comparison = httpx.get(f"{serving.url}/challenger", timeout=30).json()
        rows = comparison["agreement"]
        if rows and rows[0]["customers"] == customers:
            return dict(comparison)
        assert time.monotonic() < deadline, comparison
        time.sleep(0.5)


def _tiers(folder: Path) -> dict[tuple[str, str], str]:
    engine = sa.create_engine(f"sqlite:///{folder / 'history.db'}")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT customer_id, role, risk_tier FROM predictions"))
        tiers = {(customer, role): tier for customer, role, tier in rows}
    engine.dispose()
    return tiers


def test_in_shadow_mode_the_champion_answers_and_both_decisions_are_recorded(
    registry: Registry, customers: pd.DataFrame, tmp_path: Path
) -> None:
    records = _records(customers)
    with served(registry, tmp_path, "shadow", CHURN_HISTORY_FEATURE_SAMPLE="1") as serving:
        answers = _predict(serving, records)
        deadline = time.monotonic() + 30
        scored = "churn_challenger_predictions_total"
        while metric_total(serving.url, scored, mode="shadow") < CUSTOMERS:
            assert time.monotonic() < deadline, "the shadow challenger did not score them all"
            time.sleep(0.2)
        assert metric_total(serving.url, scored, mode="shadow") == CUSTOMERS
        assert metric_total(serving.url, "churn_challenger_dropped_total") == 0
        comparison = _comparison(serving, CUSTOMERS)
        exported = httpx.get(f"{serving.url}/metrics", timeout=10).text
        page = httpx.get(f"{serving.url}/ui/challenger", timeout=30)

    assert {(a["role"], a["model_version"]) for a in answers} == {("champion", registry.champion)}
    rows = _rows(tmp_path)
    assert set(rows) == {str(record["customerID"]) for record in records}
    for customer, recorded in rows.items():
        assert sorted(recorded) == [
            ("challenger", True, registry.challenger),
            ("champion", False, registry.champion),
        ], customer
    tiers = _tiers(tmp_path)
    same = sum(tiers[c, "champion"] == tiers[c, "challenger"] for c in rows) / CUSTOMERS
    assert comparison["mode"] == "shadow"
    assert comparison["challenger_version"] == registry.challenger
    every, *segments = comparison["agreement"]
    assert every["segment"] == "all" and every["customers"] == CUSTOMERS
    assert every["champion_version"] == registry.champion
    assert every["same_tier"] == pytest.approx(same)
    assert every["probability_correlation"] < 1  # two different models
    assert sum(segment["customers"] for segment in segments) == CUSTOMERS
    assert page.status_code == 200, page.text
    for query in (query for query in queries() if CHALLENGER_METRIC in query):
        for name in re.findall(r"churn_challenger_\w+", query):
            assert re.search(rf"^{name}(_total)?[{{ ]", exported, re.MULTILINE), query
    assert f"<td>all</td><td>{CUSTOMERS}</td><td>{same:.1%}</td>" in page.text
    history_env = {**registry.env, "CHURN_HISTORY_URL": f"sqlite:///{tmp_path / 'history.db'}"}
    training = [str(BIN / "python"), "-m", "training"]
    table = run_checked([*training, "challenger"], history_env).stdout.splitlines()
    assert f"v{registry.champion}" in table[1] and f"v{registry.challenger}" in table[1]
    assert f"{CUSTOMERS:>10,}{same:>10.1%}" in table[1] and table[1].endswith("  all")
    # Replaying the challenger's version on the recorded features gives the table its live
    # shadow decisions gave: the same customers, scored by the same version.
    replayed = run_checked(
        [*training, "replay", "--version", registry.challenger], history_env
    ).stdout.splitlines()
    assert "answered" in replayed[0] and replayed[1:] == table[1:]


def test_in_canary_mode_each_customer_keeps_its_arm_and_both_arms_are_recorded(
    registry: Registry, customers: pd.DataFrame, tmp_path: Path
) -> None:
    records = _records(customers)
    rounds = 10
    arms: dict[str, set[tuple[str, str]]] = defaultdict(set)
    with served(registry, tmp_path, "canary", CHURN_CHALLENGER_SHARE=str(CANARY_SHARE)) as serving:
        for round_ in range(rounds):
            # Each round groups the customers into requests differently.
            shuffled = records[round_:] + records[:round_]
            for answer in _predict(serving, shuffled):
                arms[str(answer["customer_id"])].add((answer["role"], answer["model_version"]))
        in_canary = sum(arm == {("challenger", registry.challenger)} for arm in arms.values())
        assert _comparison(serving, in_canary * rounds)["mode"] == "canary"

    assert all(len(answered) == 1 for answered in arms.values()), arms
    canary = {
        c for c, answered in arms.items() if answered == {("challenger", registry.challenger)}
    }
    champion = {c for c, answered in arms.items() if answered == {("champion", registry.champion)}}
    assert canary and champion and len(canary) + len(champion) == CUSTOMERS
    rows = _rows(tmp_path)
    for customer in canary:
        assert (
            sorted(rows[customer])
            == [("challenger", False, registry.challenger)] * rounds
            + [("champion", True, registry.champion)] * rounds
        ), customer
    for customer in champion:
        assert rows[customer] == [("champion", False, registry.champion)] * rounds, customer


def test_promotion_on_outcomes_moves_the_alias_to_a_better_challenger_and_refuses_a_worse_one(
    registry: Registry, customers: pd.DataFrame, tmp_path: Path
) -> None:
    """Runs last: it moves the module's aliases. A version trained on shuffled labels is the
    worse one on purpose; both versions score every customer, then the outcomes arrive."""
    shuffled = customers.assign(
        Churn=customers["Churn"].sample(frac=1.0, random_state=3).to_numpy()
    )
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False, na_rep=" ")
    tracking_uri = registry.env["MLFLOW_TRACKING_URI"]
    settings = quick_settings(tracking_uri, tmp_path / "artifacts")
    worse = train_quickly(settings, tmp_path / "shuffled.csv").version
    client = connect(settings)
    set_alias(client, settings.model_name, "challenger", worse)
    records = list(json.loads(customers.drop(columns=["Churn"]).to_json(orient="records")))
    with served(registry, tmp_path, "shadow", CHURN_CHALLENGER_ALIAS="challenger") as serving:
        for start in range(0, len(records), 100):
            body = {"customers": records[start : start + 100]}
            assert httpx.post(f"{serving.url}/predict", json=body, timeout=60).status_code == 200
        deadline = time.monotonic() + 60
        while metric_total(serving.url, "churn_challenger_predictions_total") < len(records):
            assert time.monotonic() < deadline
            time.sleep(0.5)
    history_env = {**registry.env, "CHURN_HISTORY_URL": f"sqlite:///{tmp_path / 'history.db'}"}
    outcomes = tmp_path / "outcomes.csv"
    customers[["customerID", "Churn"]].to_csv(outcomes, index=False)
    run_checked(
        [str(BIN / "python"), "-m", "training", "outcomes", "--data", str(outcomes),
         "--id-column", "customerID"],
        history_env,
    )  # fmt: skip
    promote = [str(BIN / "python"), "-m", "training", "promote", "--challenger", "--if-better"]

    performance = run_checked(
        [str(BIN / "python"), "-m", "training", "performance", "--out", str(tmp_path / "report"),
         "--no-log-to-mlflow"],
        history_env,
    ).stdout  # fmt: skip
    assert (
        f"Paired on {len(records):,} customers with outcomes, challenger v{worse} minus "
        f"champion v{registry.champion}:"
    ) in performance
    refused = run_checked(promote, history_env).stdout
    assert f"stays at version {registry.champion}: the challenger is not shown" in refused
    assert f"{len(records):,} customers" in refused
    assert champion(client, settings.model_name, "champion").version == int(registry.champion)
    tags = client.get_model_version(settings.model_name, worse).tags
    assert tags["challenge.decision"] == "kept"
    assert tags["challenge.paired_customers"] == str(len(records))

    # The same outcomes, the roles the other way round: the better version is the challenger.
    set_alias(client, settings.model_name, "champion", worse)
    set_alias(client, settings.model_name, "challenger", registry.champion)
    too_few = run_checked([*promote, "--min-outcomes", str(len(records) + 1)], history_env)
    assert f"only {len(records)} customers have outcomes" in too_few.stdout
    promoted = run_checked(promote, history_env).stdout
    assert f"-> version {registry.champion}: the challenger earned +" in promoted
    assert champion(client, settings.model_name, "champion").version == int(registry.champion)
    assert champion(client, settings.model_name, "challenger") is None
    tags = client.get_model_version(settings.model_name, registry.champion).tags
    assert tags["challenge.decision"] == "promoted"
    assert float(tags["challenge.realised_profit_difference_low"]) > 0
