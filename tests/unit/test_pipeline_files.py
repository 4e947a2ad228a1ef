"""The Jenkins pipeline, its Jenkins, and the deploy manifests hang together.

There is no Jenkins, Docker engine or Kubernetes here, so these tests check what can break
silently: make targets the Jenkinsfile calls, credentials it uses, probes and ports.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from serving.settings import ServingSettings

ROOT = Path(__file__).resolve().parents[2]
JENKINSFILE = (ROOT / "Jenkinsfile").read_text()
SERVICE_PORT = ServingSettings.model_fields["port"].default
# BentoML's own health endpoints; the service integration test calls both.
HEALTH_ENDPOINTS = {"/livez", "/readyz"}


def _yaml(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def _make_targets_called() -> set[str]:
    targets = set()
    for command in re.findall(r"make\s+(?:-s\s+)?([a-z][a-z0-9 -]*)", JENKINSFILE):
        targets |= {
            word for word in command.split() if "=" not in word and not word.startswith("-")
        }
    return targets


def _makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def test_the_jenkinsfile_calls_make_for_every_stage() -> None:
    stages = re.findall(r"stage\('([^']+)'\)", JENKINSFILE)
    assert stages == [
        "Install", "Lint", "Test", "Train and register", "Score the customer base",
        "Build bento", "Containerize",
        "Container smoke test", "Load test", "Push", "Deploy",
    ]  # fmt: skip
    for body in re.split(r"stage\('", JENKINSFILE)[1:]:
        assert "make " in body, f"stage {body.split(chr(39))[0]!r} does not call make"


def test_every_make_target_the_jenkinsfile_calls_exists() -> None:
    called = _make_targets_called()
    assert {"install", "lint", "pytest", "bento", "containerize", "loadtest", "push"} <= called
    assert called <= _makefile_targets(), called - _makefile_targets()


@pytest.mark.parametrize("target", sorted(_make_targets_called()))
def test_every_called_target_dry_runs(target: str) -> None:
    result = subprocess.run(
        ["make", "-n", target, "REGISTRY=registry.example.invalid/ml", "HOST=http://127.0.0.1:1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_every_credential_the_pipeline_uses_is_declared_in_casc() -> None:
    used = set(re.findall(r"credentials\('([^']+)'\)", JENKINSFILE))
    used |= set(re.findall(r"[cC]redentialsId: '([^']+)'", JENKINSFILE))
    declared = {
        next(iter(credential.values()))["id"]
        for domain in _yaml("jenkins/casc.yaml")["credentials"]["system"]["domainCredentials"]
        for credential in domain["credentials"]
    }
    assert used, "the Jenkinsfile uses no credentials?"
    assert used <= declared, used - declared


def test_casc_creates_the_pipeline_job_and_the_agent() -> None:
    casc = _yaml("jenkins/casc.yaml")
    script = casc["jobs"][0]["script"]
    assert "pipelineJob('churn-bundle')" in script and "scriptPath('Jenkinsfile')" in script
    labels = {node["permanent"]["labelString"] for node in casc["jenkins"]["nodes"]}
    assert re.search(r"agent \{ label '([^']+)' \}", JENKINSFILE).group(1) in labels  # type: ignore[union-attr]


def test_casc_holds_placeholders_not_secrets() -> None:
    text = (ROOT / "jenkins/casc.yaml").read_text()
    for secret_field in re.findall(r"(?:secret|password|privateKey): (.+)", text):
        assert secret_field.strip().strip('"').startswith("${"), secret_field


def test_the_controller_image_installs_the_plugins_the_pipeline_needs() -> None:
    dockerfile = (ROOT / "jenkins/Dockerfile").read_text()
    assert re.search(r"^FROM jenkins/jenkins:lts", dockerfile, re.MULTILINE)
    assert "jenkins-plugin-cli --plugin-file" in dockerfile
    plugins = set((ROOT / "jenkins/plugins.txt").read_text().split())
    assert {
        "configuration-as-code", "job-dsl", "workflow-aggregator", "generic-webhook-trigger",
        "junit", "pipeline-utility-steps", "credentials-binding", "timestamper",
    } <= plugins  # fmt: skip


def test_the_jenkins_compose_file_runs_controller_agent_and_engine() -> None:
    services = _yaml("jenkins/docker-compose.yml")["services"]
    assert set(services) == {"controller", "agent", "docker"}
    assert services["controller"]["build"] == "."
    assert "8080:8080" in services["controller"]["ports"]
    assert services["docker"]["image"].startswith("docker:") and services["docker"]["privileged"]
    assert services["agent"]["environment"]["DOCKER_HOST"].startswith("tcp://docker:")


def test_the_kubernetes_deployment_probes_real_endpoints_on_the_service_port() -> None:
    deployment = _yaml("deploy/kubernetes/deployment.yaml")
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": SERVICE_PORT}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in HEALTH_ENDPOINTS
        assert container[probe]["httpGet"]["port"] in ports
    assert {"requests", "limits"} <= set(container["resources"])
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_kubernetes_service_is_scraped_by_prometheus() -> None:
    service = _yaml("deploy/kubernetes/service.yaml")
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == SERVICE_PORT
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    deployment = _yaml("deploy/kubernetes/deployment.yaml")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_compose_deploy_target_publishes_the_service_port() -> None:
    service = _yaml("deploy/compose/docker-compose.yml")["services"]["churn-service"]
    assert any(mapping.endswith(f":{SERVICE_PORT}") for mapping in service["ports"])
    assert "/readyz" in " ".join(service["healthcheck"]["test"])


def test_the_stream_consumer_runs_from_the_service_image_in_both_targets() -> None:
    deployment = _yaml("deploy/kubernetes/stream.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    service = _yaml("deploy/kubernetes/deployment.yaml")["spec"]["template"]["spec"]
    assert container["image"] == service["containers"][0]["image"]
    assert container["command"] == ["python", "-m", "streaming"]
    metrics_port = deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]
    assert {"name": "metrics", "containerPort": int(metrics_port)} in container["ports"]
    assert container["livenessProbe"]["httpGet"]["port"] == "metrics"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    compose = _yaml("deploy/compose/docker-compose.yml")["services"]
    stream = compose["churn-stream"]
    assert stream["image"] == compose["churn-service"]["image"]
    assert stream["command"] == ["python", "-m", "streaming"] and stream["profiles"] == ["stream"]
    assert container["workingDir"] == stream["working_dir"] == "/home/bentoml/bento/src"


def _make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_the_nightly_sql_source_reaches_training_with_its_table_or_query(tmp_path: Path) -> None:
    # A stand-in python that prints what it was asked to run.
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\nfor arg in "$@"; do printf "[%s]" "$arg"; done; echo\n')
    fake.chmod(0o755)
    query = "select * from customers where region = 'EU' and \"Plan\" <> 'x'"
    url = "postgresql://crm/db"
    for name, value, flag in (("TRAIN_QUERY", query, "--query"), ("TRAIN_TABLE", "crm", "--table")):
        result = _make(
            "train", "-o", "install", f"PY={fake}", f"TRAIN_DATA={url}", f"{name}={value}"
        )
        assert result.returncode == 0, result.stderr
        assert f"[--data][{url}]" in result.stdout and f"[{flag}][{value}]" in result.stdout


def test_a_failing_bentoml_build_fails_make_bento(tmp_path: Path) -> None:
    (tmp_path / "bentoml").write_text("#!/bin/sh\necho 'Error: the build failed' >&2\nexit 1\n")
    (tmp_path / "bentoml").chmod(0o755)
    result = _make("bento", "-o", "install", f"BIN={tmp_path}", "PY=true", f"REPORTS={tmp_path}")
    assert result.returncode != 0
    assert "the build failed" in result.stderr


def test_kubernetes_rolls_out_once_and_only_to_the_built_image() -> None:
    result = _make("-n", "deploy-kubernetes", "REGISTRY=registry.example.invalid/ml", "GIT_SHA=abc")
    assert result.returncode == 0, result.stderr
    applies = [line for line in result.stdout.splitlines() if "kubectl apply" in line]
    deployment = [line for line in applies if "deployment.yaml" in line]
    assert len(deployment) == 1
    assert "image: registry.example.invalid/ml/churn-service:abc" in deployment[0]
    assert "set image" not in result.stdout


def test_timer_and_promotion_builds_deploy_to_the_configured_target() -> None:
    choices = re.search(r"name: 'DEPLOY_TARGET', choices: \[([^\]]*)\]", JENKINSFILE)
    assert choices and choices.group(1).split(",")[0].strip() == "'default'"
    assert "env.DEFAULT_DEPLOY_TARGET" in JENKINSFILE
    global_env = _yaml("jenkins/casc.yaml")["jenkins"]["globalNodeProperties"][0]["envVars"]["env"]
    assert "DEFAULT_DEPLOY_TARGET" in {variable["key"] for variable in global_env}
    assert "params.DEPLOY_TARGET != 'none'" not in JENKINSFILE
