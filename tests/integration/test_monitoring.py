"""Monitoring with the real tools: `bentoml serve` scraped by a real Prometheus that evaluates
monitoring/alerts.yml and sends to a real Alertmanager, which posts to a local receiver."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from history.settings import HistorySettings
from history.store import History
from loadtests.servers import free_port, wait_until_ready
from monitoring.dashboard import CHALLENGER_METRIC, STREAM_METRIC, queries
from tests.integration.conftest import BIN, ROOT, Champion, bentoml_serve, stop
from training.realised import Realised
from training.realised_report import Report, store_in_history

pytestmark = pytest.mark.integration
TOOLS = ROOT / ".tools"
PROMETHEUS = TOOLS / "prometheus" / "usr" / "bin" / "prometheus"
ALERTMANAGER = TOOLS / "alertmanager" / "usr" / "bin" / "prometheus-alertmanager"
DRIFTED = 1200


@dataclass
class Receiver:
    """A local HTTP endpoint that keeps every JSON body (and Authorization header) posted."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [
            alert
            for body in self.bodies
            for alert in body.get("alerts", [])
            if alert["labels"].get("alertname") == name
        ]


def _receiver(stack: ExitStack) -> Receiver:
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            receiver.bodies.append(json.loads(self.rfile.read(length)))
            receiver.authorizations.append(self.headers.get("authorization"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stack.callback(server.shutdown)
    return receiver


def _start(
    stack: ExitStack, command: list[str], ready: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    stack.callback(stop, process)
    wait_until_ready(ready, process)
    return process


def _alertmanager(stack: ExitStack, folder: Path, env: dict[str, str]) -> str:
    if not ALERTMANAGER.exists():
        pytest.fail("Alertmanager is not unpacked: run `make monitoring-tools` (make test does).")
    config = folder / "alertmanager.yml"
    subprocess.run(
        [str(BIN / "python"), "-m", "monitoring.alertmanager_config", "--out", str(config)],
        cwd=ROOT,
        env={**env, "CHURN_ALERT_GROUP_WAIT": "1s"},
        check=True,
        capture_output=True,
    )
    port = free_port()
    _start(
        stack,
        [str(ALERTMANAGER), f"--config.file={config}", f"--storage.path={folder / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        f"http://127.0.0.1:{port}/-/ready",
        folder / "alertmanager.log",
    )  # fmt: skip
    return f"http://127.0.0.1:{port}"


def _prometheus(stack: ExitStack, folder: Path, service: str, alertmanager: str) -> str:
    if not PROMETHEUS.exists():
        pytest.fail("Prometheus is not unpacked: run `make monitoring-tools` (make test does).")
    # The real rules, waiting seconds instead of minutes before they fire.
    rules = re.sub(r"for: \d+[mh]", "for: 3s", (ROOT / "monitoring" / "alerts.yml").read_text())
    (folder / "alerts.yml").write_text(rules)
    config = (ROOT / "monitoring" / "prometheus.yml").read_text()
    config = config.replace("SERVICE", service.removeprefix("http://"))
    config = config.replace("ALERTMANAGER", alertmanager.removeprefix("http://"))
    config = config.replace("scrape_interval: 15s", "scrape_interval: 1s")
    config = config.replace("evaluation_interval: 15s", "evaluation_interval: 1s")
    (folder / "prometheus.yml").write_text(config)
    port = free_port()
    _start(
        stack,
        [str(PROMETHEUS), f"--config.file={folder / 'prometheus.yml'}",
         f"--storage.tsdb.path={folder / 'prom-data'}", f"--web.listen-address=127.0.0.1:{port}"],
        f"http://127.0.0.1:{port}/-/ready",
        folder / "prometheus.log",
    )  # fmt: skip
    return f"http://127.0.0.1:{port}"


def _serve(stack: ExitStack, folder: Path, champion: Champion) -> tuple[str, dict[str, str]]:
    port = free_port()
    env = {
        **champion.env,
        "CHURN_PORT": str(port),
        "CHURN_WORKERS": "2",
        "CHURN_HISTORY_URL": f"sqlite:///{folder / 'history.db'}",
        "CHURN_HISTORY_FEATURE_SAMPLE": "1",
        "CHURN_HISTORY_FLUSH_SECONDS": "0.1",
        "CHURN_DRIFT_REFRESH_SECONDS": "1",
    }
    return stack.enter_context(bentoml_serve(env, folder / "serve.log")).url, env


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    assert response.status_code == 200, response.text
    return list(response.json()["data"]["result"])


def _alert_states(prometheus: str, name: str) -> set[str]:
    alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return {a["state"] for a in alerts if a["labels"]["alertname"] == name}


def _wait(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def drifted(
    tmp_path_factory: pytest.TempPathFactory, customers: pd.DataFrame, champion: Champion
) -> Iterator[dict[str, Any]]:
    """The stack, after traffic whose tenure and MonthlyCharges have shifted; the states the
    drift alert went through on the way."""
    folder = tmp_path_factory.mktemp("monitoring")
    with ExitStack() as stack:
        receiver = _receiver(stack)
        service, env = _serve(stack, folder, champion)
        alertmanager = _alertmanager(
            stack, folder, {**env, "CHURN_ALERT_WEBHOOK_URL": receiver.url}
        )
        prometheus = _prometheus(stack, folder, service, alertmanager)
        shifted = (
            customers.head(DRIFTED).drop(columns=["Churn"]).assign(tenure=70, MonthlyCharges=115.0)
        )
        records = json.loads(shifted.to_json(orient="records"))
        with httpx.Client(base_url=service, timeout=30) as client:
            for start in range(0, len(records), 50):
                response = client.post("/predict", json={"customers": records[start : start + 50]})
                assert response.status_code == 200, response.text
            assert client.post("/predict", json={"customers": [{"tenure": "x"}]}).status_code == 400
        states: list[str] = []

        def fired() -> bool:
            now = _alert_states(prometheus, "ChurnFeatureDrift")
            states.extend(sorted(now - set(states)))
            return "firing" in now

        _wait("ChurnFeatureDrift never fired", fired)
        yield {
            "service": service,
            "prometheus": prometheus,
            "receiver": receiver,
            "states": states,
            "env": env,
        }


def test_shifted_traffic_raises_feature_psi_and_the_drift_alert_goes_pending_then_firing(
    drifted: dict[str, Any],
) -> None:
    prometheus = drifted["prometheus"]
    for feature in ("tenure", "MonthlyCharges"):
        [series] = _query(prometheus, f'churn_feature_psi{{feature="{feature}"}}')
        assert float(series["value"][1]) > 0.25, feature
    [gender] = _query(prometheus, 'churn_feature_psi{feature="gender"}')
    assert float(gender["value"][1]) < 0.1
    assert drifted["states"][:2] == ["pending", "firing"]
    labels = {
        alert["labels"]["feature"]
        for alert in httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        if alert["labels"]["alertname"] == "ChurnFeatureDrift" and alert["state"] == "firing"
    }
    assert {"tenure", "MonthlyCharges"} <= labels


def test_the_local_receiver_gets_the_drift_alert_from_alertmanager(
    drifted: dict[str, Any],
) -> None:
    receiver: Receiver = drifted["receiver"]
    alerts = _wait(
        "the receiver never got ChurnFeatureDrift", lambda: receiver.alerts("ChurnFeatureDrift")
    )
    alert = alerts[0]
    assert alert["status"] == "firing"
    assert alert["labels"]["feature"] in {"tenure", "MonthlyCharges", "TotalCharges"}
    assert "python -m training drift" in alert["annotations"]["runbook"]
    assert "has drifted: PSI" in alert["annotations"]["summary"]


def test_every_dashboard_query_returns_data_from_the_real_prometheus(
    drifted: dict[str, Any], champion: Champion
) -> None:
    history = History.open(HistorySettings(url=drifted["env"]["CHURN_HISTORY_URL"]))
    realised = Realised(
        model_version=champion.version, customers=500, churn_rate=0.25, roc_auc=0.8,
        pr_auc=0.6, precision=0.5, recall=0.7, top_decile_lift=2.4, targeted_share=0.3,
        profit_per_customer=12.0,
    )  # fmt: skip
    store_in_history(history, Report(champion.model_name, 90, [realised]))
    empty = []
    # The stream consumer's panels are checked against a real consumer in test_streaming.py,
    # the challenger's against a service with one in test_challenger.py.
    for expr in (q for q in queries() if STREAM_METRIC not in q and CHALLENGER_METRIC not in q):
        try:
            _wait(expr, lambda e=expr: _query(drifted["prometheus"], e), timeout=20)
        except AssertionError:
            empty.append(expr)
    assert not empty, f"no data for: {empty}"


def test_alertmanager_routes_drift_to_the_retrain_hook_with_its_token_and_all_to_the_team(
    tmp_path: Path, champion: Champion
) -> None:
    with ExitStack() as stack:
        team, retrain = _receiver(stack), _receiver(stack)
        env = {
            **champion.env,
            "CHURN_ALERT_WEBHOOK_URL": team.url,
            "CHURN_ALERT_RETRAIN_URL": retrain.url,
            "CHURN_ALERT_RETRAIN_TOKEN": "s3cret-token",
        }
        alertmanager = _alertmanager(stack, tmp_path, env)
        now = datetime.now(UTC).isoformat()
        drift = {"alertname": "ChurnFeatureDrift", "feature": "tenure", "severity": "ticket"}
        sent = [
            {"labels": drift, "startsAt": now,
             "annotations": {"summary": "Feature tenure has drifted: PSI 0.61", "runbook": "x"}},
            {"labels": {"alertname": "ChurnServerErrors", "severity": "page"},
             "annotations": {"summary": "2% fail", "runbook": "read the log"}, "startsAt": now},
        ]  # fmt: skip
        response = httpx.post(f"{alertmanager}/api/v2/alerts", json=sent, timeout=10)
        assert response.status_code == 200, response.text
        _wait("the team never got both alerts", lambda: len(team.bodies) >= 2, timeout=30)
        _wait("the retrain hook never got the drift alert", lambda: retrain.bodies, timeout=30)
        assert {a["labels"]["alertname"] for b in team.bodies for a in b["alerts"]} == {
            "ChurnFeatureDrift",
            "ChurnServerErrors",
        }
        assert [a["labels"]["alertname"] for b in retrain.bodies for a in b["alerts"]] == [
            "ChurnFeatureDrift"
        ]
        assert retrain.authorizations == ["Bearer s3cret-token"]
        assert team.authorizations[0] is None
        drift = retrain.bodies[0]
        assert drift["status"] == "firing" and drift["receiver"] == "retrain"
        assert (
            drift["alerts"][0]["annotations"]["summary"] == "Feature tenure has drifted: PSI 0.61"
        )
