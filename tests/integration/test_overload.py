"""What a served service does at its limits: one `bentoml serve` worker with a small in-flight
cap, a short latency budget and one file task at a time, driven past each over HTTP, and sent
requests from before it has loaded its model."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import psutil
import pytest

from loadtests.metrics_page import metric_total
from loadtests.servers import free_port, wait_until_ready
from tests.integration.conftest import Champion, Serving, bentoml_serve

pytestmark = pytest.mark.integration
IN_FLIGHT = 4
LARGE = 1000
STARTING_ATTEMPTS = 3000
JSON_CONTENT = {"content-type": "application/json"}


@dataclass(frozen=True)
class Tight:
    serving: Serving
    # What /predict answered to requests sent from the moment the port was open.
    while_starting: list[httpx.Response]


@pytest.fixture(scope="module")
def started(
    tmp_path_factory: pytest.TempPathFactory, champion: Champion, customers: pd.DataFrame
) -> Iterator[Tight]:
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
    with bentoml_serve(env, folder / "serve.log", ready=False) as serving:
        answers = _predict_while_starting(serving, {"customers": _records(customers, 3)})
        wait_until_ready(f"{serving.url}/readyz", serving.process)
        yield Tight(serving, answers)


@pytest.fixture(scope="module")
def tight(started: Tight) -> Serving:
    return started.serving


def _predict_while_starting(serving: Serving, body: dict[str, object]) -> list[httpx.Response]:
    """/predict sent over and over from the start, until one connection is accepted and
    answered; every answer got on the way."""
    answers: list[httpx.Response] = []
    for _ in range(STARTING_ATTEMPTS):
        try:
            answers.append(httpx.post(f"{serving.url}/predict", json=body, timeout=180))
            if answers[-1].status_code == 200:
                return answers
        except httpx.ConnectError:
            assert serving.process.poll() is None, serving.log.read_text()[-2000:]
        time.sleep(0.05)
    return answers


def _records(customers: pd.DataFrame, count: int) -> list[dict[str, object]]:
    frame = customers.drop(columns=["Churn"]).head(count)
    return list(json.loads(frame.to_json(orient="records")))


def test_a_request_sent_while_the_service_starts_waits_for_the_model_and_is_answered(
    started: Tight, champion: Champion
) -> None:
    statuses = [answer.status_code for answer in started.while_starting]
    assert statuses == [200], [answer.text for answer in started.while_starting]
    answers = started.while_starting[0].json()
    assert [answer["model_version"] for answer in answers] == [champion.version] * 3
    assert all(0 <= answer["churn_probability"] <= 1 for answer in answers)


def test_past_the_in_flight_cap_and_the_latency_budget_a_request_gets_a_503_then_service_again(
    tight: Serving, customers: pd.DataFrame
) -> None:
    # Encoded once and sent from one event loop: threads that encode and send in turn under
    # the GIL reach the service one at a time, too slowly to fill its in-flight places.
    large = json.dumps({"customers": _records(customers, LARGE)}).encode()
    before = metric_total(tight.url, "bentoml_service_request_total", http_response_code="503")

    async def post_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=tight.url, timeout=60, limits=limits) as client:
            return list(
                await asyncio.gather(
                    *(
                        client.post("/predict", content=large, headers=JSON_CONTENT)
                        for _ in range(64)
                    )
                )
            )

    responses = asyncio.run(post_all())
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
    # BentoML starts a task after answering its submission; two submissions that both come
    # before it starts both pass the cap (documented in serving/http/file_tasks.py).
    assert _scoring_process_started(tight, within_s=60)
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


def _scoring_process_started(serving: Serving, within_s: float) -> bool:
    service = psutil.Process(serving.process.pid)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        for child in service.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "scoring" in child.cmdline():
                    return True
        time.sleep(0.05)
    return False
