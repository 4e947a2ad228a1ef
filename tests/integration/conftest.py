"""Real back ends: MLflow on SQLite, on PostgreSQL and behind an `mlflow server` process."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadtests.scratch_database import scratch_database
from loadtests.servers import free_port, wait_until_ready
from training.data import Source
from training.promote import promote_auto
from training.settings import TrainingSettings
from training.train import TrainingResult, train

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get(
    "CHURN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# The servers `make services` starts, or your own (see the README's "make test also needs").
REDIS_URL = os.environ.get("CHURN_TEST_REDIS", "redis://127.0.0.1:6379/0")
KAFKA_BOOTSTRAP = os.environ.get("CHURN_TEST_KAFKA", "127.0.0.1:9092")
MLFLOW_ADMIN = ("admin", f"test-{uuid.uuid4().hex}")
# Few trees keep the suite quick; early stopping still runs.
FAST = {"catboost_iterations": 150, "min_rows": 200}


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class Serving:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def bentoml_serve(env: dict[str, str], log: Path, ready: bool = True) -> Iterator[Serving]:
    """`bentoml serve .` with `env` (its CHURN_PORT) until the block ends, ready when it is
    entered unless `ready` is False; its output in `log`. Every served test starts the service
    here."""
    url = f"http://127.0.0.1:{env['CHURN_PORT']}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(BIN / "bentoml"), "serve", "."], cwd=ROOT, env=env, stdout=output, stderr=output
        )
        try:
            if ready:
                wait_until_ready(f"{url}/readyz", process)
            yield Serving(url, process, log)
        finally:
            stop(process)


def quick_settings(tracking_uri: str, artifact_root: Path, **overrides: object) -> TrainingSettings:
    return TrainingSettings(
        tracking_uri=tracking_uri,  # type: ignore[call-arg]
        artifact_root=artifact_root,
        **{**FAST, **overrides},  # type: ignore[arg-type]
    )


def train_quickly(settings: TrainingSettings, data: Path, seed: int = 42) -> TrainingResult:
    return train(
        Source(str(data)), target="Churn", id_column="customerID", seed=seed, settings=settings
    )


@dataclass(frozen=True)
class Champion:
    """A quickly trained, promoted model, imported into its own BentoML store."""

    tracking_uri: str
    model_name: str
    version: str
    env: dict[str, str]


@pytest.fixture(scope="session")
def champion(tmp_path_factory: pytest.TempPathFactory, customers_csv: Path) -> Champion:
    folder = tmp_path_factory.mktemp("champion")
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    settings = quick_settings(tracking_uri, folder / "artifacts")
    result = train_quickly(settings, customers_csv)
    promote_auto(settings)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "BENTOML_HOME": str(folder / "bento"),
        "CHURN_HISTORY_URL": f"sqlite:///{folder / 'history.db'}",
    }
    run_checked([str(BIN / "python"), "-m", "serving", "import-champion"], env)
    return Champion(tracking_uri, settings.model_name, result.version, env)


def run_checked(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="session")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'mlflow.db'}"


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database for this test run, dropped afterwards."""
    with scratch_database(POSTGRES_ADMIN_URL, "churn_test") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def mlflow_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The production set-up, as scripted in mlflow/: a tracking server on PostgreSQL with
    basic auth. The test process and its children sign in as the admin."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    with fresh_postgres_database() as database, fresh_postgres_database() as auth_database:
        env = {
            **os.environ,
            "MLFLOW_BACKEND_STORE_URI": database,
            "MLFLOW_AUTH_DATABASE_URI": auth_database,
            "MLFLOW_AUTH_ADMIN_PASSWORD": MLFLOW_ADMIN[1],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": uuid.uuid4().hex,
            "MLFLOW_ARTIFACTS_DESTINATION": str(folder / "artifacts"),
            "MLFLOW_HOST": "127.0.0.1",
            "MLFLOW_PORT": str(port),
            "MLFLOW_WORKERS": "1",
            "MLFLOW_BIN": str(BIN / "mlflow"),
            # The webhook test's relay listens on loopback over plain HTTP.
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            # The server caches who listens to each event; a new webhook must count at once.
            "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        }
        process = subprocess.Popen(
            ["bash", str(ROOT / "mlflow" / "serve-production.sh")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(folder / "server.log").open("wb"),
        )
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/health", process)
            with signed_in(*MLFLOW_ADMIN):
                yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)


@contextmanager
def signed_in(username: str | None, password: str | None) -> Iterator[None]:
    """MLflow clients here and in child processes use these credentials (None: anonymous)."""
    names = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    before = {name: os.environ.get(name) for name in names}
    for name, value in zip(names, (username, password), strict=True):
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
