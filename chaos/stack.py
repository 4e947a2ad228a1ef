"""The system under test, as in production: `bentoml serve` with two workers in follow mode,
keys required and kept in PostgreSQL, limits counted in Redis, the history in PostgreSQL, and
an `mlflow server` registry. Each store is reached through a FaultProxy; the suite's own
checks go to the stores directly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import psutil

from chaos.proxy import FaultProxy
from loadtests.scratch_database import scratch_database
from loadtests.servers import Target, bentoml_serve, free_port, mlflow_server, started

TRAIN = {"CHURN_CATBOOST_ITERATIONS": "150", "CHURN_CANDIDATES": "catboost"}
KEY_CACHE_S = 5
FOLLOW_POLL_S = 2


@dataclass(frozen=True)
class Stack:
    url: str
    key: str
    env: dict[str, str]  # the service's
    direct: dict[str, str]  # the same stores without the proxies
    history_db: str
    proxies: dict[str, FaultProxy]
    versions: tuple[str, str]
    server_pid: int
    records: list[dict[str, Any]]

    def workers(self) -> list[psutil.Process]:
        """The live worker processes (a killed one is a zombie until it is reaped)."""
        found = []
        for process in psutil.Process(self.server_pid).children(recursive=True):
            try:
                if process.status() != psutil.STATUS_ZOMBIE and "worker-id" in " ".join(
                    process.cmdline()
                ):
                    found.append(process)
            except psutil.Error:
                continue
        return found

    def cli(self, *command: str) -> str:
        """`python -m <command>` against the stores directly; its standard output."""
        done = subprocess.run(
            [sys.executable, "-m", *command], env={**os.environ, **self.direct},
            capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        return done.stdout.strip()


def through(proxy: FaultProxy, url: str) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    address = f"127.0.0.1:{proxy.port}"
    return parts._replace(netloc=f"{netloc[0]}@{address}" if len(netloc) == 2 else address).geturl()


def proxy_for(url: str) -> FaultProxy:
    parts = urlsplit(url)
    return FaultProxy(parts.hostname or "127.0.0.1", parts.port or 0).start()


@contextmanager
def stack(
    data: Path, folder: Path, postgres_admin: str, redis_url: str, port: int
) -> Iterator[Stack]:
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as exits:
        history_db = exits.enter_context(scratch_database(postgres_admin, "churn_chaos_history"))
        keys_db = exits.enter_context(scratch_database(postgres_admin, "churn_chaos_keys"))
        tracking = f"sqlite:///{folder / 'mlflow.db'}"
        direct = {
            "MLFLOW_TRACKING_URI": tracking,
            "CHURN_ARTIFACT_ROOT": str(folder / "artifacts"),
            "BENTOML_HOME": str(folder / "bentoml"),
            "CHURN_AUTH_DB": keys_db,
            "CHURN_AUTH_PEPPER": uuid.uuid4().hex,
            "CHURN_HISTORY_URL": history_db,
            **TRAIN,
        }
        versions = _two_versions(data, direct)
        registry_port = free_port()
        exits.enter_context(
            started(
                Target(
                    "mlflow server",
                    "registry",
                    "",
                    mlflow_server(tracking, registry_port),
                    "/health",
                    # MLflow's background job workers are not what is tested, and cost CPU.
                    {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                ),
                registry_port,
                folder / "mlflow-server.log",
            )
        )
        proxies = {
            "history": proxy_for(history_db),
            "keys": proxy_for(keys_db),
            "redis": proxy_for(redis_url),
            "registry": FaultProxy("127.0.0.1", registry_port).start(),
        }
        for proxy in proxies.values():
            exits.callback(proxy.stop)
        # A limit the load stays under, counted per second: a lease lapses with its window, so
        # each serving worker asks Redis at least once a second and any outage is met.
        key = _run(
            direct, "serving", "keys", "create", "--name", "chaos", "--scopes", "predict",
            "--rate", "100000/second",
        )  # fmt: skip
        env = {
            **direct,
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{proxies['registry'].port}",
            "CHURN_AUTH": "required",
            "CHURN_AUTH_DB": through(proxies["keys"], keys_db),
            "CHURN_AUTH_CACHE_SECONDS": str(KEY_CACHE_S),
            "CHURN_RATE_LIMIT_STORAGE": through(proxies["redis"], redis_url),
            "CHURN_HISTORY_URL": through(proxies["history"], history_db),
            "CHURN_FOLLOW_ALIAS": "true",
            "CHURN_FOLLOW_POLL_S": str(FOLLOW_POLL_S),
            "CHURN_FOLLOW_STAGGER_S": "1",
            "CHURN_WORKERS": "2",
            "CHURN_PORT": str(port),
        }
        server = exits.enter_context(
            started(
                Target("bentoml serve", "service", "", bentoml_serve(port), "/readyz", env),
                port,
                folder / "serve.log",
            )
        )
        records = json.loads(
            pd.read_csv(data).drop(columns=["Churn"]).head(500).to_json(orient="records")
        )
        yield Stack(
            server.url, key, env, direct, history_db, proxies, versions, server.pid, records
        )


def _two_versions(data: Path, env: dict[str, str]) -> tuple[str, str]:
    """Two registered versions with one request schema; the champion alias on the first."""
    for seed in ("1", "2"):
        _run(
            env,
            "training",
            "train",
            "--data",
            str(data),
            "--seed",
            seed,
            "--id-column",
            "customerID",
        )
    first, second = "1", "2"
    _run(env, "training", "promote", "--version", first)
    _run(env, "serving", "import-champion")
    return first, second


def _run(env: dict[str, str], *command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *command], env={**os.environ, **env},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"python -m {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip()
