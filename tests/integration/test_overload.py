"""What a served service does at its limits: one `bentoml serve` worker with a small in-flight
cap, a short latency budget and one file task at a time, driven past each over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest

from loadtests.metrics_page import metric_total
from tests.integration.conftest import Champion, Serving, bentoml_serve, free_port

pytestmark = pytest.mark.integration
IN_FLIGHT = 4
LARGE = 1000


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory, champion: Champion) -> Iterator[Serving]:
    folder = tmp_path_factory.mktemp("tight")
    env = {
        **champion.env,
        "CHURN_PORT": str(free_port()),
        "CHURN_WORKERS": "1",
        "CHURN_MAX_IN_FLIGHT_PER_WORKER": str(IN_FLIGHT),
        "CHURN_MAX_LATENCY_MS": "20",
        "CHURN_MAX_BATCH_SIZE": str(LARGE),
        "CHURN_MAX_FILE_TASKS_PER_WORKER": "1",
        "CHURN_HISTORY_URL": f"sqlite:///{folder / 'history.db'}",
    }
    with bentoml_serve(env, folder / "serve.log") as serving:
        yield serving


def _records(customers: pd.DataFrame, count: int) -> list[dict[str, object]]:
    frame = customers.drop(columns=["Churn"]).head(count)
    return list(json.loads(frame.to_json(orient="records")))


def test_past_the_in_flight_cap_and_the_latency_budget_a_request_gets_a_503_then_service_again(
    tight: Serving, customers: pd.DataFrame
) -> None:
    large = {"customers": _records(customers, LARGE)}
    before = metric_total(tight.url, "bentoml_service_request_total", http_response_code="503")

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{tight.url}/predict", json=large, timeout=60)

    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(post, range(64)))

    statuses = [response.status_code for response in responses]
    assert set(statuses) == {200, 503}, statuses
    for response in (r for r in responses if r.status_code == 503):
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"].startswith("Overloaded")
    after = metric_total(tight.url, "bentoml_service_request_total", http_response_code="503")
    assert after - before == statuses.count(503)
    one = {"customers": _records(customers, 1)}
    assert httpx.post(f"{tight.url}/predict", json=one, timeout=30).status_code == 200


def test_a_file_task_past_the_workers_cap_gets_a_429_and_the_first_is_scored(
    tight: Serving, customers: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "many.csv"
    table = customers.drop(columns=["Churn"])
    pd.concat([table] * max(1, 20_000 // len(table))).to_csv(path, index=False)

    def submit() -> httpx.Response:
        with path.open("rb") as upload:
            return httpx.post(
                f"{tight.url}/score_file/submit", files={"file": (path.name, upload)}, timeout=60
            )

    first = submit()
    assert first.status_code == 200, first.text
    second = submit()
    assert second.status_code == 429, second.text
    assert second.headers["retry-after"] == "60"
    assert "error" in second.json()
    task_id = first.json()["task_id"]
    for _ in range(240):
        status = httpx.get(
            f"{tight.url}/score_file/status", params={"task_id": task_id}, timeout=30
        ).json()
        if status["status"] != "in_progress":
            break
        time.sleep(0.5)
    assert status["status"] == "completed", status
    assert submit().status_code == 200  # the slot is free again
