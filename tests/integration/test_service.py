"""A real `bentoml build` and a real `bentoml serve` (2 workers), called over HTTP."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import schemathesis
import yaml
from hypothesis import Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from loadtests.gate import read_summary
from loadtests.headless import locust_command
from loadtests.metrics_page import series, total
from loadtests.servers import free_port
from tests.integration.conftest import BIN, ROOT, Champion, bentoml_serve, run_checked

pytestmark = pytest.mark.integration
WORKERS = 2
MAX_CUSTOMERS = 1000


@dataclass(frozen=True)
class Served:
    url: str
    env: dict[str, str]
    bento_tag: str
    version: str
    tracking_uri: str
    model_name: str
    pid: int
    log: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, champion: Champion) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("serving")
    port = free_port()
    env = {
        **champion.env,
        "CHURN_PORT": str(port),
        "CHURN_WORKERS": str(WORKERS),
        "CHURN_MAX_CUSTOMERS_PER_REQUEST": str(MAX_CUSTOMERS),
    }
    build = run_checked([str(BIN / "bentoml"), "build", "--output", "tag"], env)
    bento_tag = re.findall(r"__tag__:(\S+)", build.stdout)[-1]
    with bentoml_serve(env, folder / "serve.log") as serving:
        yield Served(
            serving.url,
            env,
            bento_tag,
            champion.version,
            champion.tracking_uri,
            champion.model_name,
            serving.process.pid,
            serving.log,
        )


def _records(customers: pd.DataFrame, rows: slice) -> list[dict[str, Any]]:
    frame = customers.drop(columns=["Churn"]).iloc[rows]
    return json.loads(frame.to_json(orient="records"))


def _use_store(served: Served) -> None:
    """Both URIs: a registry URI set by an earlier test would otherwise outlive it."""
    mlflow.set_tracking_uri(served.tracking_uri)
    mlflow.set_registry_uri(served.tracking_uri)


def _offline(served: Served, records: list[dict[str, Any]]) -> np.ndarray:
    _use_store(served)
    model = mlflow.pyfunc.load_model(f"models:/{served.model_name}/{served.version}")
    return np.asarray(model.unwrap_python_model().churn_probability(pd.DataFrame(records)))


def test_the_bento_has_a_dockerfile_and_references_the_champion(served: Served) -> None:
    name, version = served.bento_tag.split(":")
    bento = Path(served.env["BENTOML_HOME"]) / "bentos" / name / version
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.MULTILINE)
    assert "requirements.txt" in dockerfile
    assert re.search(r"^ENTRYPOINT", dockerfile, re.MULTILINE)
    assert "EXPOSE 3000" in dockerfile
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    assert re.search(r"^catboost==", requirements, re.MULTILINE)
    assert "--hash=sha256:" in requirements
    assert not re.search(r"^(locust|pytest|mypy)==", requirements, re.MULTILINE)
    manifest = yaml.safe_load((bento / "bento.yaml").read_text())
    models = manifest["services"][0]["models"]
    assert [m["tag"].split(":")[0] for m in models] == ["churn"]
    shipped = {p.name for p in (bento / "src").iterdir()}
    assert {"service.py", "serving", "churn", "scoring", "registry", "cli", "history"} <= shipped
    assert (bento / "src" / "streaming" / "__main__.py").exists()
    assert re.search(r"^aiokafka==", requirements, re.MULTILINE)
    assert list((bento / "src" / "history" / "migrations").glob("*/001_*.sql"))
    assert "training" not in shipped


def test_the_registered_model_carries_only_the_runtime_package(served: Served) -> None:
    _use_store(served)
    folder = mlflow.artifacts.download_artifacts(
        f"models:/{served.model_name}/{served.version}", tracking_uri=served.tracking_uri
    )
    assert {p.name for p in (Path(folder) / "code").iterdir()} == {"churn"}


def test_predictions_match_the_registered_model_in_request_order(
    served: Served, customers: pd.DataFrame
) -> None:
    records = _records(customers, slice(0, 50))
    response = httpx.post(f"{served.url}/predict", json={"customers": records}, timeout=30)
    assert response.status_code == 200, response.text
    predictions = response.json()
    assert [p["customer_id"] for p in predictions] == [r["customerID"] for r in records]
    np.testing.assert_allclose(
        [p["churn_probability"] for p in predictions], _offline(served, records), rtol=0, atol=1e-9
    )
    assert {p["model_version"] for p in predictions} == {served.version}
    assert {p["risk_tier"] for p in predictions} <= {"low", "medium", "high"}
    assert all(isinstance(p["churn"], bool) for p in predictions)


def test_unknown_categories_and_missing_numbers_are_scored(
    served: Served, customers: pd.DataFrame
) -> None:
    record = _records(customers, slice(0, 1))[0] | {
        "InternetService": "Satellite",
        "TotalCharges": None,
    }
    response = httpx.post(f"{served.url}/predict", json={"customers": [record]}, timeout=30)
    assert response.status_code == 200, response.text
    assert 0.0 <= response.json()[0]["churn_probability"] <= 1.0


def _bad_requests(record: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    without_tenure = {k: v for k, v in record.items() if k != "tenure"}
    return [
        ("missing field", json.dumps({"customers": [without_tenure]}).encode(), "tenure"),
        (
            "wrong type",
            json.dumps({"customers": [record | {"MonthlyCharges": "lots"}]}).encode(),
            "MonthlyCharges",
        ),
        ("unparseable JSON", b'{"customers": [', "Invalid JSON"),
        ("empty body", b"", "customers"),
        ("empty list", b'{"customers": []}', "customers"),
        (
            "over the limit",
            json.dumps({"customers": [record] * (MAX_CUSTOMERS + 1)}).encode(),
            "customers",
        ),
    ]


@pytest.mark.parametrize("case", range(6))
def test_bad_requests_get_a_400_that_names_the_problem(
    served: Served, customers: pd.DataFrame, case: int
) -> None:
    name, body, mentioned = _bad_requests(_records(customers, slice(0, 1))[0])[case]
    response = httpx.post(
        f"{served.url}/predict",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, f"{name}: {response.status_code} {response.text[:300]}"
    assert mentioned in response.text, name


def test_bad_neighbours_in_the_same_batch_do_not_drop_good_customers(
    served: Served, customers: pd.DataFrame
) -> None:
    records = _records(customers, slice(100, 300))
    expected = _offline(served, records)
    bad = records[0] | {"tenure": "forever"}

    def send(index: int) -> tuple[int, httpx.Response]:
        body = {"customers": [bad]} if index % 3 == 0 else {"customers": [records[index]]}
        return index, httpx.post(f"{served.url}/predict", json=body, timeout=30)

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(send, range(len(records))))
    for index, response in results:
        if index % 3 == 0:
            assert response.status_code == 400
            continue
        assert response.status_code == 200, response.text
        prediction = response.json()[0]
        assert prediction["customer_id"] == records[index]["customerID"]
        assert prediction["churn_probability"] == pytest.approx(expected[index], abs=1e-9)


def test_metrics_count_every_customer_across_workers(
    served: Served, customers: pd.DataFrame
) -> None:
    before = httpx.get(f"{served.url}/metrics", timeout=10).text
    records = _records(customers, slice(300, 340))
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(
            pool.map(
                lambda r: httpx.post(f"{served.url}/predict", json={"customers": [r]}, timeout=30),
                records,
            )
        )
    assert all(r.status_code == 200 for r in responses)
    after = httpx.get(f"{served.url}/metrics", timeout=10).text

    predicted = total(after, "churn_predictions_total") - total(before, "churn_predictions_total")
    observed = total(after, "churn_probability_count") - total(before, "churn_probability_count")
    assert predicted == observed == len(records)
    assert total(after, "churn_model_info", name=served.model_name, version=served.version) == 1
    assert "churn_probability_bucket" in after
    answered = {"endpoint": "/predict", "http_response_code": "200"}
    requests = total(after, "bentoml_service_request_total", **answered) - total(
        before, "bentoml_service_request_total", **answered
    )
    assert requests == len(records)
    assert "bentoml_service_request_duration_seconds_bucket" in after
    assert "bentoml_service_adaptive_batch_size_bucket" in after


def _series(text: str, metric: str, endpoint: str) -> list[dict[str, str]]:
    """The label sets of `metric`'s samples for `endpoint` in a /metrics page."""
    return [labels for labels, _ in series(text, metric, endpoint=endpoint)]


@pytest.mark.parametrize(
    "metric",
    [
        "bentoml_service_request_total",
        "bentoml_service_request_duration_seconds_bucket",
        "bentoml_service_request_in_progress",
    ],
)
def test_the_lanes_request_metrics_are_bentomls_own_series(
    served: Served, customers: pd.DataFrame, metric: str
) -> None:
    """serving/http/bentoml_request_metrics.py copies BentoML's names, labels and buckets: /predict
    (the lane) and /model (BentoML's app) must show the same label names and bucket edges."""
    one = {"customers": _records(customers, slice(0, 1))}
    httpx.post(f"{served.url}/predict", json=one, timeout=30).raise_for_status()
    httpx.get(f"{served.url}/model", timeout=10).raise_for_status()
    text = httpx.get(f"{served.url}/metrics", timeout=10).text

    lane, bentoml_app = _series(text, metric, "/predict"), _series(text, metric, "/model")
    assert lane and bentoml_app, f"{metric} has no line for /predict or /model"
    assert {tuple(sorted(labels)) for labels in lane} == {
        tuple(sorted(labels)) for labels in bentoml_app
    }
    assert {labels.get("le") for labels in lane} == {labels.get("le") for labels in bentoml_app}


def test_with_auth_off_anyone_is_served_and_the_log_warns_of_it(served: Served) -> None:
    assert httpx.get(f"{served.url}/model", timeout=10).status_code == 200
    assert "CHURN_AUTH=off: every endpoint is open" in served.log.read_text()


def test_model_card_health_and_docs(served: Served) -> None:
    card = httpx.get(f"{served.url}/model", timeout=10).json()
    assert card["name"] == served.model_name and card["version"] == served.version
    assert card["run_id"] and 0 < card["threshold"] < 1
    assert 0.5 < card["test_metrics"]["roc_auc"] <= 1
    assert {f["name"] for f in card["features"]} >= {"tenure", "Contract", "TotalCharges"}
    assert httpx.get(f"{served.url}/livez", timeout=10).status_code == 200
    assert httpx.get(f"{served.url}/readyz", timeout=10).status_code == 200
    openapi = httpx.get(f"{served.url}/docs.json", timeout=10).text
    assert all(name in openapi for name in ("MonthlyCharges", "PaymentMethod", "customerID"))


def test_a_short_locust_run_passes_its_own_checks(
    served: Served, customers_csv: Path, tmp_path: Path
) -> None:
    """Keeps the load-test path from rotting: the real locustfile, a few seconds, low rate.

    10 s, not less: on a busy CI machine a 4 s run once ended with 16 requests sent and a stats
    CSV that had not caught up with any of them."""
    env = {
        **os.environ,
        "LOADTEST_DATA": str(customers_csv),
        "LOADTEST_RATE": "40",
        "LOADTEST_USERS": "8",
    }
    result = subprocess.run(
        locust_command(served.url, 8, 8, 10, tmp_path / "smoke", reset_stats=False),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    summary = read_summary(tmp_path / "smoke_stats.csv")
    assert summary.requests > 20, result.stderr[-2000:]
    assert summary.failures == 0, (tmp_path / "smoke_failures.csv").read_text()


def test_predictions_carry_decile_segment_and_action(
    served: Served, customers: pd.DataFrame
) -> None:
    records = _records(customers, slice(400, 420))
    predictions = httpx.post(
        f"{served.url}/predict", json={"customers": records}, timeout=30
    ).json()
    card = httpx.get(f"{served.url}/model", timeout=10).json()
    segment_names = {s["segment_id"]: s["name"] for s in card["segments"]}
    for segment in card["segments"]:
        assert segment["size"] > 0 and 0 <= segment["churn_rate"] <= 1
        assert segment["name"] == ", ".join(trait["phrase"] for trait in segment["traits"])
        assert all(trait["share"] >= 0.6 for trait in segment["traits"])
    assert card["playbook"]["name"] == "telco" and card["playbook"]["rules"]
    for prediction in predictions:
        assert 1 <= prediction["decile"] <= 10
        assert prediction["segment"] == segment_names[prediction["segment_id"]]
        assert prediction["expected_value"] >= 0
        assert (prediction["action"] == "no action") == (prediction["expected_value"] == 0)


def test_bentomls_own_client_gets_the_same_answers_as_plain_http(
    served: Served, customers: pd.DataFrame
) -> None:
    """bentoml.SyncHTTPClient reads the service's schema and calls /predict and /explain as any
    HTTP client does; both must say exactly what curl would be told."""
    records = _records(customers, slice(0, 5))
    with bentoml.SyncHTTPClient(served.url, timeout=30) as client:
        predicted = client.predict(customers=records)
        explained = client.explain(customers=records)
    for path, answer in (("/predict", predicted), ("/explain", explained)):
        plain = httpx.post(f"{served.url}{path}", json={"customers": records}, timeout=30)
        assert plain.status_code == 200, plain.text
        assert answer == plain.json(), path


def test_explain_gives_three_reasons_per_customer(served: Served, customers: pd.DataFrame) -> None:
    records = _records(customers, slice(0, 3))
    response = httpx.post(f"{served.url}/explain", json={"customers": records}, timeout=30)
    assert response.status_code == 200, response.text
    for record, explanation in zip(records, response.json(), strict=True):
        assert explanation["customer_id"] == record["customerID"]
        reasons = explanation["reasons"]
        assert len(reasons) == 3
        assert all(r["feature"] in record for r in reasons)
        assert [abs(r["contribution"]) for r in reasons] == sorted(
            (abs(r["contribution"]) for r in reasons), reverse=True
        )


def _score_file_task(served: Served, path: Path) -> tuple[str, dict[str, Any]]:
    with path.open("rb") as upload:
        submitted = httpx.post(
            f"{served.url}/score_file/submit", files={"file": (path.name, upload)}, timeout=30
        )
    assert submitted.status_code == 200, submitted.text
    task_id = submitted.json()["task_id"]
    for _ in range(120):
        status = httpx.get(f"{served.url}/score_file/status", params={"task_id": task_id}).json()
        if status["status"] != "in_progress":
            break
        time.sleep(0.5)
    return task_id, status


def test_a_file_is_scored_as_a_task(
    served: Served, customers: pd.DataFrame, tmp_path: Path
) -> None:
    table = customers.drop(columns=["Churn"]).head(300).astype(str)
    table.loc[5, "MonthlyCharges"] = "free"
    path = tmp_path / "upload.csv"
    table.to_csv(path, index=False)
    task_id, status = _score_file_task(served, path)
    assert status["status"] == "completed", status
    result = httpx.get(f"{served.url}/score_file/get", params={"task_id": task_id}, timeout=30)
    answer = result.json()
    assert answer["summary"]["customers_scored"] == 299
    assert answer["summary"]["rows_rejected"] == 1
    download = httpx.get(f"{served.url}{answer['scored_file']}", timeout=30)
    assert download.headers["content-type"].startswith("text/csv")
    scored = pd.read_csv(io.StringIO(download.text), dtype={"customerID": str})
    assert scored["customerID"].tolist() == table["customerID"].tolist()
    assert scored.loc[5, "error"] == "MonthlyCharges: 'free' is not a number"
    assert scored["churn_probability"].notna().sum() == 299
    page = httpx.get(f"{served.url}{answer['summary_page']}", timeout=30)
    assert page.status_code == 200 and "Churn scoring summary" in page.text


def test_a_file_the_model_cannot_read_fails_its_task_with_one_clear_line(
    served: Served, customers: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "no-tenure.csv"
    customers.drop(columns=["Churn", "tenure"]).head(20).to_csv(path, index=False)
    task_id, status = _score_file_task(served, path)
    assert status["status"] == "failed", status
    result = httpx.get(f"{served.url}/score_file/get", params={"task_id": task_id}, timeout=30)
    assert result.status_code == 400
    body = result.json()  # BentoML wraps a failed task's error in a list
    error = (body[0] if isinstance(body, list) else body)["error"]
    assert error.startswith("The uploaded file lacks the feature columns tenure;"), error
    assert "\n" not in error and "Traceback" not in error


def test_bodies_over_the_limit_get_a_413_on_every_endpoint_that_reads_one(
    served: Served,
) -> None:
    too_big = b'{"customers": [' + b" " * (8 * 1024 * 1024) + b"]}"
    for path in ("/predict", "/explain"):
        response = httpx.post(f"{served.url}{path}", content=too_big, timeout=30)
        assert response.status_code == 413, (path, response.text[:300])
        assert "too large" in response.json()["error"]

    def streamed() -> Iterator[bytes]:  # no Content-Length: counted while it arrives
        yield b'{"customers": ['
        for _ in range(200):
            yield b" " * 65536

    response = httpx.post(f"{served.url}/predict", content=streamed(), timeout=30)
    assert response.status_code == 413


@pytest.mark.parametrize("value", ['"inf"', "NaN", "Infinity", "1e400"])
def test_numbers_that_are_not_finite_get_a_400_naming_the_field(
    served: Served, customers: pd.DataFrame, value: str
) -> None:
    record = json.dumps(_records(customers, slice(0, 1))[0] | {"tenure": "PLACEHOLDER"})
    body = '{"customers": [' + record.replace('"PLACEHOLDER"', value) + "]}"
    for path in ("/predict", "/explain"):
        response = httpx.post(f"{served.url}{path}", content=body, timeout=30)
        assert response.status_code == 400, (path, response.text[:300])
        assert response.json()["detail"][0]["loc"][-1] == "tenure"


def test_a_service_paused_during_large_batches_answers_again_once_resumed(
    served: Served, customers: pd.DataFrame
) -> None:
    """A VM pause in the middle of scoring: every process of the service stopped for 6 s."""
    import psutil

    big = {"customers": _records(customers, slice(0, MAX_CUSTOMERS))}
    single = {"customers": _records(customers, slice(0, 1))}
    server = psutil.Process(served.pid)
    stopping = threading.Event()

    def keep_sending() -> None:
        while not stopping.is_set():
            httpx.post(f"{served.url}/predict", json=big, timeout=60)

    senders = [threading.Thread(target=keep_sending) for _ in range(4)]
    for sender in senders:
        sender.start()
    time.sleep(1.0)
    processes = [server, *server.children(recursive=True)]
    for process in processes:
        process.suspend()
    time.sleep(6.0)
    for process in processes:
        process.resume()
    resumed = time.monotonic()
    stopping.set()

    statuses = []
    first_answer = None
    while len(statuses) < 20:
        status = httpx.post(f"{served.url}/predict", json=single, timeout=30).status_code
        statuses.append(status)
        if status == 200 and first_answer is None:
            first_answer = time.monotonic() - resumed
        time.sleep(0.1)
    for sender in senders:
        sender.join()
    assert statuses == [200] * 20
    # Well under the 30 s request timeout a stuck service would take; a busy machine needs
    # more than a second or two.
    assert first_answer is not None and first_answer < 10.0


BODIES = {"/predict", "/explain"}
FUZZED_PATHS = re.compile(r"^/(predict|explain|model|score_file/(status|get|cancel))$")


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _check_error_body(status: int, content_type: str, text: str, request: str) -> None:
    """Whatever was sent, every 4xx and 5xx answer is JSON with an "error" string."""
    if status < 400:
        return
    assert content_type.startswith("application/json"), (request, status, content_type, text[:300])
    body = _strict_json(text)
    error = body[0] if isinstance(body, list) else body
    assert isinstance(error.get("error"), str), (request, body)


def _check(case: Any, response: Any) -> None:
    """No 500, no invalid JSON, and every 4xx carries the error body."""
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    content_type = response.headers.get("content-type", [""])[0]  # each header: its values
    if content_type.startswith("application/json"):
        _strict_json(response.text)
    _check_error_body(response.status_code, content_type, response.text, case.as_curl_command())


@pytest.mark.parametrize("path", sorted(BODIES))
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"tenure=3"),
        ("text/html", b"<html><body>customers</body></html>"),
        ("application/x-www-form-urlencoded", b"customers=1&tenure=3"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n',
        ),
        ("application/json", b"\xff\xfe not utf-8"),
        ("application/json", b'{"customers": [NaN]}'),
        ("", b'{"customers": []}'),
    ],
    ids=["text", "html", "form", "multipart", "not-utf8", "nan", "no-type"],
)
def test_a_body_of_any_content_type_gets_the_json_error_body(
    served: Served, path: str, content_type: str, body: bytes
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = httpx.post(f"{served.url}{path}", content=body, headers=headers, timeout=30)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    _check_error_body(
        response.status_code,
        response.headers.get("content-type", ""),
        response.text,
        f"POST {path} ({content_type or 'no content type'})",
    )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_no_500_and_every_4xx_has_the_error_body(
    served: Served, mode: GenerationMode
) -> None:
    """Property-based requests from the service's own OpenAPI schema, valid and invalid."""
    schema = schemathesis.openapi.from_url(f"{served.url}/docs.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = [op for op in operations if FUZZED_PATHS.match(op.path)]
    assert {op.path for op in fuzzed} >= {"/predict", "/explain", "/model"}
    for operation in fuzzed:

        @settings(
            max_examples=40,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            database=None,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case: Any) -> None:
            _check(case, case.call(base_url=served.url, timeout=30))

        try:
            call()
        except Unsatisfiable:  # nothing invalid to send, as for GET /model
            assert mode == GenerationMode.NEGATIVE and operation.path not in BODIES, operation.path


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"BENTOML_HOME": "{folder}/empty-store"}, "churn:latest could not be found"),
        ({"CHURN_HISTORY_URL": "postgresql://churn@127.0.0.1:1/history"}, "CHURN_HISTORY_URL"),
    ],
    ids=["no model", "history unreachable"],
)
def test_a_service_that_cannot_start_says_why_in_one_line_before_any_worker(
    champion: Champion, tmp_path: Path, change: dict[str, str], names: str
) -> None:
    env = {
        **champion.env,
        "CHURN_PORT": str(free_port()),
        **{name: value.format(folder=tmp_path) for name, value in change.items()},
    }
    started = subprocess.run(
        [str(BIN / "bentoml"), "serve", "."],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = (started.stdout + started.stderr).strip()
    assert started.returncode == 1, output
    assert names in output.splitlines()[-1]
    assert "Traceback" not in output
    assert "Starting production HTTP BentoServer" not in output
