"""Access control on a real `bentoml serve` with 2 workers, keys in PostgreSQL and rate limits
counted in Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from loadtests.metrics_page import metric_total
from loadtests.servers import free_port
from serving.access.key_cache import MISS_REFRESH_S
from serving.access.key_store import KeyStore
from tests.integration.conftest import (
    BIN,
    REDIS_URL,
    ROOT,
    Champion,
    bentoml_serve,
    fresh_postgres_database,
    run_checked,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]
CACHE_SECONDS = 2
WORKERS = 2


@dataclass(frozen=True)
class Guarded:
    url: str
    env: dict[str, str]
    log: Path

    def create_key(self, name: str, *options: str) -> str:
        """A new key, once every worker is sure to see it: a worker re-reads the table for an
        unknown key at most every MISS_REFRESH_S, so a read that began just before the key was
        made can refuse it for that long, as the README says ("a new key works within a second")."""
        command = [str(BIN / "python"), "-m", "serving", "keys", "create", "--name", name]
        key = run_checked([*command, *options], self.env).stdout.strip()
        time.sleep(MISS_REFRESH_S + 0.1)
        return key


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, champion: Champion) -> Iterator[Guarded]:
    log = tmp_path_factory.mktemp("guarded") / "serve.log"
    port = free_port()
    with fresh_postgres_database() as keys_database:
        env = {
            **champion.env,
            "CHURN_PORT": str(port),
            "CHURN_WORKERS": str(WORKERS),
            "CHURN_AUTH": "required",
            "CHURN_AUTH_DB": keys_database,
            "CHURN_AUTH_PEPPER": uuid.uuid4().hex,
            "CHURN_AUTH_CACHE_SECONDS": str(CACHE_SECONDS),
            "CHURN_RATE_LIMIT_STORAGE": REDIS_URL,
            # Its own history: other tests' services record the same customers.
            "CHURN_HISTORY_URL": f"sqlite:///{log.parent / 'history.db'}",
        }
        with bentoml_serve(env, log) as serving:
            yield Guarded(serving.url, env, log)


def _body(customers: pd.DataFrame, count: int = 1) -> dict[str, Any]:
    records = json.loads(customers.drop(columns=["Churn"]).head(count).to_json(orient="records"))
    return {"customers": records}


def _post(guarded: Guarded, path: str, body: Any, key: str | None = None) -> httpx.Response:
    """Each call on a new connection, so the two workers share the requests."""
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{guarded.url}{path}", json=body, headers=headers, timeout=30)


def test_health_docs_and_metrics_are_open_and_everything_else_needs_a_key(
    guarded: Guarded, customers: pd.DataFrame
) -> None:
    for path in ("/livez", "/readyz", "/metrics", "/docs.json"):
        assert httpx.get(f"{guarded.url}{path}", timeout=10).status_code == 200, path
    for path in ("/predict", "/explain"):
        response = _post(guarded, path, _body(customers))
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "An API key is required" in response.json()["error"]
    assert httpx.get(f"{guarded.url}/model", timeout=10).status_code == 401


def test_a_key_reaches_what_its_scopes_allow_and_gets_a_403_elsewhere(
    guarded: Guarded, customers: pd.DataFrame
) -> None:
    key = guarded.create_key("scoped", "--scopes", "predict")
    predicted = _post(guarded, "/predict", _body(customers, 3), key)
    assert predicted.status_code == 200 and len(predicted.json()) == 3
    via_header = httpx.post(
        f"{guarded.url}/predict", json=_body(customers), headers={"X-API-Key": key}, timeout=30
    )
    assert via_header.status_code == 200
    card = httpx.get(f"{guarded.url}/model", headers={"X-API-Key": key}, timeout=10)
    assert card.status_code == 200
    forbidden = _post(guarded, "/explain", _body(customers), key)
    assert forbidden.status_code == 403
    assert "lacks the 'explain' scope" in forbidden.json()["error"]
    assert metric_total(guarded.url, "churn_predictions_total", client="scoped") == 4


def test_history_needs_the_history_scope_and_records_who_asked(
    guarded: Guarded, customers: pd.DataFrame
) -> None:
    scorer = guarded.create_key("crm-sync", "--scopes", "predict")
    reader = guarded.create_key("retention-team", "--scopes", "history")
    body = _body(customers.sample(1, random_state=11))
    assert _post(guarded, "/predict", body, scorer).status_code == 200
    history = f"{guarded.url}/customers/{body['customers'][0]['customerID']}/history"
    assert httpx.get(history, timeout=10).status_code == 401
    assert httpx.get(history, headers={"X-API-Key": scorer}, timeout=10).status_code == 403
    deadline = time.monotonic() + 10
    scores: list[dict[str, Any]] = []
    while not scores and time.monotonic() < deadline:
        response = httpx.get(history, headers={"X-API-Key": reader}, timeout=10)
        assert response.status_code == 200
        scores = response.json()["scores"]
        time.sleep(0.2)
    assert [score["client"] for score in scores] == ["crm-sync"]


def test_bad_keys_get_a_401_never_a_500(guarded: Guarded, customers: pd.DataFrame) -> None:
    key = guarded.create_key("probed")
    key_id = key.split("_")[1]
    revoked = guarded.create_key("gone")
    run_checked([str(BIN / "python"), "-m", "serving", "keys", "revoke", "gone"], guarded.env)
    time.sleep(CACHE_SECONDS + 0.5)
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"X-API-Key": "chn_not-a-key"},
        {"X-API-Key": f"chn_{key_id}_" + "x" * 43},
        {"X-API-Key": f"chn_{key_id}_" + "x" * 10_000},
        {"X-API-Key": revoked},
    ):
        response = httpx.post(
            f"{guarded.url}/predict", json=_body(customers), headers=headers, timeout=30
        )
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["error"]


def test_a_rate_limit_is_shared_by_both_workers_and_counted_in_customers(
    guarded: Guarded, customers: pd.DataFrame
) -> None:
    key = guarded.create_key("shared", "--rate", "30/minute")
    batches_before = [_worker_batches(guarded, worker) for worker in (1, 2)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(
            pool.map(lambda _: _post(guarded, "/predict", _body(customers), key), range(45))
        )
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 30 and statuses.count(429) == 15, statuses
    served_by = [
        _worker_batches(guarded, w) - b for w, b in zip((1, 2), batches_before, strict=True)
    ]
    assert all(served > 0 for served in served_by), f"one worker served all: {served_by}"

    limited = next(response for response in responses if response.status_code == 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["ratelimit-limit"] == "30"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert "Key 'shared' has used its 30 customers per minute" in limited.json()["error"]
    assert metric_total(guarded.url, "churn_rate_limited_total", client="shared") == 15
    assert metric_total(guarded.url, "churn_predictions_total", client="shared") == 30


def _worker_batches(guarded: Guarded, worker: int) -> float:
    return metric_total(
        guarded.url, "bentoml_service_adaptive_batch_size_count", worker_index=str(worker)
    )


def test_a_daily_quota_counts_customers_not_requests(
    guarded: Guarded, customers: pd.DataFrame
) -> None:
    key = guarded.create_key("quota", "--daily-customers", "10", "--rate", "1000/second")
    assert _post(guarded, "/predict", _body(customers, 6), key).status_code == 200
    refused = _post(guarded, "/predict", _body(customers, 6), key)
    assert refused.status_code == 429
    assert "10 customers per day" in refused.json()["error"]
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    midnight = datetime.combine(tomorrow, dt_time(), UTC)
    until_midnight = (midnight - datetime.now(UTC)).total_seconds()
    assert abs(int(refused.headers["retry-after"]) - until_midnight) < 60


def test_a_revoked_key_is_refused_by_every_worker_within_the_cache_time(
    guarded: Guarded, customers: pd.DataFrame
) -> None:
    key = guarded.create_key("leaver")
    assert all(
        _post(guarded, "/predict", _body(customers), key).status_code == 200 for _ in range(6)
    )
    KeyStore(guarded.env["CHURN_AUTH_DB"]).revoke("leaver")
    revoked_at = time.monotonic()
    last_accepted_after = 0.0
    while time.monotonic() - revoked_at < 2 * CACHE_SECONDS + 2:
        if _post(guarded, "/predict", _body(customers), key).status_code == 200:
            last_accepted_after = time.monotonic() - revoked_at
        time.sleep(0.05)
    # A worker that missed a re-read would accept it for a second cache period.
    assert last_accepted_after < CACHE_SECONDS + 1.5
    statuses = {_post(guarded, "/predict", _body(customers), key).status_code for _ in range(10)}
    assert statuses == {401}
    listed = run_checked([str(BIN / "python"), "-m", "serving", "keys", "list"], guarded.env)
    leaver = next(line for line in listed.stdout.splitlines() if line.startswith("leaver"))
    assert leaver.count("Z") == 3, "created, last used and revoked are all shown"


def test_the_readme_curl_works_as_printed(guarded: Guarded) -> None:
    readme = (ROOT / "README.md").read_text()
    export = next(line for line in readme.splitlines() if line.startswith("export CHURN_API_KEY"))
    curl = next(line for line in readme.splitlines() if "curl -s -X POST" in line)
    port = guarded.url.rsplit(":", 1)[1]
    history = next(
        line for line in readme.splitlines() if "/customers/0001-EXAMPLE/history" in line
    )
    script = "\n".join(
        [
            export,
            curl.replace("localhost:3000", f"localhost:{port}"),
            "echo",
            # The history is written within a second.
            "for _ in $(seq 50); do",
            f"  page=$({history.replace('localhost:3000', f'localhost:{port}')})",
            '  case "$page" in *request_id*) break;; esac; sleep 0.2',
            'done; echo "$page"',
        ]
    )
    answer = run_checked(["bash", "-euo", "pipefail", "-c", script], guarded.env)
    predicted, recorded = answer.stdout.strip().splitlines()
    [prediction] = json.loads(predicted)
    assert prediction["customer_id"] == "0001-EXAMPLE"
    page = json.loads(recorded)
    assert page["scores"][0]["churn_probability"] == prediction["churn_probability"]
    assert page["scores"][0]["client"] == "my-laptop"


def test_the_demo_prints_a_curl_that_works_as_printed(guarded: Guarded) -> None:
    key = guarded.create_key("demo", "--scopes", "predict,explain,score_file", "--replace")
    command = [str(BIN / "python"), "-m", "serving", "example-request", "--api-key", key]
    curl = run_checked(command, guarded.env).stdout.strip()
    answer = run_checked(["bash", "-euo", "pipefail", "-c", curl], guarded.env)
    [prediction] = json.loads(answer.stdout)
    assert 0 <= prediction["churn_probability"] <= 1
