"""Moving `champion` on a real MLflow server reaches a stand-in Jenkins through the relay."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from mlflow.tracking import MlflowClient

from loadtests.servers import free_port, wait_until_ready
from serving.model.follow import CHANNEL as FOLLOW_CHANNEL
from tests.integration.conftest import BIN, MLFLOW_ADMIN, REDIS_URL, ROOT, stop
from webhook.signature import sign

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]
SECRET = "test-webhook-secret"
TOKEN = "test-jenkins-token"
ALERT_TOKEN = "test-alertmanager-token"


class FakeJenkins(ThreadingHTTPServer):
    """Records the Generic Webhook Trigger calls it receives."""

    def __init__(self, port: int) -> None:
        self.calls: list[dict[str, Any]] = []
        self.failures_to_come = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                if outer.failures_to_come:
                    outer.failures_to_come -= 1
                    self.rfile.read(length)
                    self.send_response(500)
                    self.end_headers()
                    return
                url = urlparse(self.path)
                outer.calls.append(
                    {
                        "path": url.path,
                        "query": parse_qs(url.query),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"jobs": {"churn-bundle": {"triggered": true}}}')

            def log_message(self, *_: Any) -> None:
                pass

        super().__init__(("127.0.0.1", port), Handler)


@pytest.fixture(scope="module")
def jenkins() -> Iterator[FakeJenkins]:
    server = FakeJenkins(free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _relay_env(jenkins: FakeJenkins, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "MLFLOW_WEBHOOK_SECRET": SECRET,
        "JENKINS_TRIGGER_URL": f"http://127.0.0.1:{jenkins.server_port}/generic-webhook-trigger/invoke",
        "JENKINS_TRIGGER_TOKEN": TOKEN,
        "CHURN_MODEL_NAME": "churn_webhook",
        "RELAY_HOST": "127.0.0.1",
        "RELAY_PORT": str(port),
        "RELAY_ALERT_TOKEN": ALERT_TOKEN,
        "RELAY_BROADCAST_URL": REDIS_URL,
    }


@contextmanager
def running_relay(jenkins: FakeJenkins, folder: Path) -> Iterator[str]:
    port = free_port()
    log = (folder / f"relay-{port}.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "python"), "-m", "webhook.relay"],
        cwd=ROOT,
        env=_relay_env(jenkins, port),
        stdout=log,
        stderr=log,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/health", process)
        yield f"http://127.0.0.1:{port}/mlflow-webhook"
    finally:
        stop(process)


@pytest.fixture(scope="module")
def relay(jenkins: FakeJenkins, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_relay(jenkins, tmp_path_factory.mktemp("relay")) as url:
        yield url


def _wait_for_call(jenkins: FakeJenkins, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(jenkins.calls) < count and time.monotonic() < deadline:
        time.sleep(0.2)


def test_moving_champion_triggers_jenkins(
    mlflow_server_uri: str, relay: str, jenkins: FakeJenkins, tmp_path: Path
) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server_uri, "MLFLOW_WEBHOOK_SECRET": SECRET}
    registered = subprocess.run(
        ["bash", "mlflow/register-webhook.sh", relay],
        cwd=ROOT,
        env={**env, "PYTHON": str(BIN / "python")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert registered.returncode == 0, registered.stderr

    client = MlflowClient(mlflow_server_uri, mlflow_server_uri)
    client.create_registered_model("churn_webhook")
    experiment = client.create_experiment(f"webhook-{uuid.uuid4().hex[:8]}")
    for _ in range(2):
        run = client.create_run(experiment)
        (tmp_path / "MLmodel").write_text("flavors: {}\n")
        client.log_artifact(run.info.run_id, str(tmp_path / "MLmodel"), "model")
        client.create_model_version(
            "churn_webhook", source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
    before = len(jenkins.calls)

    # 1. From the CLI, as a person or the nightly job would.
    promoted = subprocess.run(
        [str(BIN / "python"), "-m", "training", "promote", "--version", "1"],
        cwd=ROOT,
        env={**env, "CHURN_MODEL_NAME": "churn_webhook"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert promoted.returncode == 0, promoted.stderr
    _wait_for_call(jenkins, before + 1)
    call = jenkins.calls[before]
    assert call["path"] == "/generic-webhook-trigger/invoke"
    assert call["query"] == {"token": [TOKEN]}
    assert call["body"]["model_name"] == "churn_webhook"
    assert call["body"]["model_version"] == "1"

    # 2. Through the endpoint the MLflow UI calls when someone adds the alias there.
    response = httpx.post(
        f"{mlflow_server_uri}/ajax-api/2.0/mlflow/registered-models/alias",
        json={"name": "churn_webhook", "alias": "champion", "version": "2"},
        auth=MLFLOW_ADMIN,  # the UI signs in as a person
        timeout=30,
    )
    assert response.status_code == 200, response.text
    _wait_for_call(jenkins, before + 2)
    assert jenkins.calls[before + 1]["body"]["model_version"] == "2"


def _signed(body: bytes, secret: str = SECRET, age: int = 0) -> dict[str, str]:
    delivery_id, timestamp = str(uuid.uuid4()), str(int(time.time()) - age)
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": sign(secret, delivery_id, timestamp, body),
    }


EVENT = json.dumps(
    {
        "entity": "model_version_alias",
        "action": "created",
        "data": {"name": "churn_webhook", "alias": "champion", "version": "7"},
    }
).encode()


@pytest.mark.parametrize(
    ("delivery", "reason"),
    [
        (lambda: {"Content-Type": "application/json"}, "unsigned"),
        (lambda: _signed(EVENT, secret="not-the-secret"), "signature does not match"),
        (lambda: _signed(EVENT, age=3600), "s away from now"),  # an old capture replayed
    ],
    ids=["unsigned", "wrong secret", "stale"],
)
def test_the_relay_rejects_bad_deliveries(
    relay: str, jenkins: FakeJenkins, delivery: Callable[[], dict[str, str]], reason: str
) -> None:
    """Signed when the test runs, so each case is refused for its own reason."""
    before = len(jenkins.calls)
    response = httpx.post(relay, content=EVENT, headers=delivery(), timeout=10)
    assert response.status_code == 401, response.text
    assert reason in response.json()["error"]
    assert len(jenkins.calls) == before


def test_the_relay_forwards_a_delivery_once(relay: str, jenkins: FakeJenkins) -> None:
    before = len(jenkins.calls)
    headers = _signed(EVENT)
    assert httpx.post(relay, content=EVENT, headers=headers, timeout=10).status_code == 202
    assert httpx.post(relay, content=EVENT, headers=headers, timeout=10).status_code == 409
    assert len(jenkins.calls) == before + 1
    assert jenkins.calls[-1]["body"]["model_version"] == "7"


def test_a_delivery_jenkins_failed_goes_through_when_mlflow_retries_it(
    relay: str, jenkins: FakeJenkins
) -> None:
    before = len(jenkins.calls)
    headers = _signed(EVENT)
    jenkins.failures_to_come = 1
    assert httpx.post(relay, content=EVENT, headers=headers, timeout=10).status_code == 502
    assert httpx.post(relay, content=EVENT, headers=headers, timeout=10).status_code == 202
    assert httpx.post(relay, content=EVENT, headers=headers, timeout=10).status_code == 409
    assert len(jenkins.calls) == before + 1


def test_replays_are_rejected_by_another_replica_and_after_a_restart(
    relay: str, jenkins: FakeJenkins, tmp_path: Path
) -> None:
    headers = _signed(EVENT)
    assert httpx.post(relay, content=EVENT, headers=headers, timeout=10).status_code == 202
    before = len(jenkins.calls)
    with running_relay(jenkins, tmp_path) as other_replica:
        response = httpx.post(other_replica, content=EVENT, headers=headers, timeout=10)
        assert response.status_code == 409
    with running_relay(jenkins, tmp_path) as restarted:
        assert httpx.post(restarted, content=EVENT, headers=headers, timeout=10).status_code == 409
    assert len(jenkins.calls) == before


@pytest.mark.parametrize("signature", ["v1,\u00e9t\u00e9".encode("latin-1"), b"v1,\xff\xfe"])
def test_a_malformed_signature_header_gets_a_401_not_a_500(relay: str, signature: bytes) -> None:
    headers: dict[str, Any] = {**_signed(EVENT), "X-MLflow-Signature": signature}
    assert httpx.post(relay, content=EVENT, headers=headers, timeout=10).status_code == 401


def test_a_body_over_the_limit_gets_a_413_while_it_is_read(relay: str) -> None:
    big = b"x" * (1024 * 1024 + 1)
    assert httpx.post(relay, content=big, headers=_signed(big), timeout=10).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(20):
            yield b"y" * 65536

    response = httpx.post(relay, content=chunks(), headers=_signed(b""), timeout=10)
    assert response.status_code == 413


def _drift_alerts(episode: str, name: str = "ChurnFeatureDrift") -> dict[str, Any]:
    """An Alertmanager webhook body, as the retrain receiver gets it."""
    return {
        "version": "4",
        "status": "firing",
        "receiver": "retrain",
        "alerts": [
            {"status": "firing", "labels": {"alertname": name, "feature": "tenure"},
             "annotations": {}, "startsAt": "2026-12-01T10:00:00Z", "fingerprint": episode},
            {"status": "resolved", "labels": {"alertname": name, "feature": "gender"},
             "annotations": {}, "startsAt": "2026-12-01T09:00:00Z", "fingerprint": "old"},
        ],
    }  # fmt: skip


def test_a_new_drift_episode_triggers_one_retrain_build(relay: str, jenkins: FakeJenkins) -> None:
    alerts = relay.replace("/mlflow-webhook", "/alerts")
    body = _drift_alerts(uuid.uuid4().hex)
    bearer = {"Authorization": f"Bearer {ALERT_TOKEN}"}
    before = len(jenkins.calls)
    assert httpx.post(alerts, json=body, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.post(alerts, json=body, headers=wrong, timeout=10).status_code == 401
    assert httpx.post(alerts, json=body, headers=bearer, timeout=10).status_code == 202
    # Alertmanager repeats a firing alert: the same episode never retrains twice.
    repeated = httpx.post(alerts, json=body, headers=bearer, timeout=10)
    assert repeated.status_code == 200 and repeated.json()["forwarded"] is False
    other = _drift_alerts(uuid.uuid4().hex, name="ChurnServerErrors")
    assert httpx.post(alerts, json=other, headers=bearer, timeout=10).json()["forwarded"] is False
    assert httpx.post(alerts, json=[1], headers=bearer, timeout=10).status_code == 400
    assert len(jenkins.calls) == before + 1
    call = jenkins.calls[-1]
    assert call["query"] == {"token": [TOKEN]}
    assert call["body"]["retrain_reason"] == "drift: ChurnFeatureDrift (tenure)"
    assert call["body"]["model_alias"] == "champion"


def test_a_relayed_promotion_is_published_for_services_in_follow_mode(
    relay: str, jenkins: FakeJenkins
) -> None:
    import redis

    subscription = redis.Redis.from_url(REDIS_URL).pubsub(ignore_subscribe_messages=True)
    subscription.subscribe(FOLLOW_CHANNEL)
    event = json.dumps(
        {"entity": "model_version_alias", "action": "created",
         "data": {"name": "churn_webhook", "alias": "champion", "version": "9"}}
    ).encode()  # fmt: skip
    headers = _signed(event)
    assert httpx.post(relay, content=event, headers=headers, timeout=10).status_code == 202
    deadline, message = time.monotonic() + 10, None
    while message is None and time.monotonic() < deadline:
        message = subscription.get_message(timeout=1.0)
    assert message is not None, "nothing was published"
    published = json.loads(message["data"])
    assert published["version"] == "9" and published["name"] == "churn_webhook"
    assert published["at"] == int(headers["X-MLflow-Timestamp"])
    # A replay is refused before anything is published.
    assert httpx.post(relay, content=event, headers=headers, timeout=10).status_code == 409
    assert subscription.get_message(timeout=2.0) is None
