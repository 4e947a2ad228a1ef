"""The servers the benchmarks start: a command, its environment, and how to know it is ready."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
READY_WITHIN_S = 180


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Target:
    name: str
    key: str  # what --targets selects
    api: str  # the request format the Locust file sends
    command: list[str]
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


def bentoml_serve(port: int) -> list[str]:
    return [str(BIN / "bentoml"), "serve", ".", "--port", str(port)]


def create_key(env: dict[str, str], scopes: str, *options: str) -> str:
    """A key named "bench" in the key store `env` names (CHURN_AUTH_DB), printed once by the
    keys CLI."""
    created = subprocess.run(
        [sys.executable, "-m", "serving", "keys", "create", "--name", "bench", "--scopes", scopes,
         *options],
        env={**os.environ, **env}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return created.stdout.strip()


def mlflow_serve(model_uri: str, workers: int, port: int) -> list[str]:
    return [
        str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
        "-h", "127.0.0.1", "-p", str(port), "-w", str(workers),
    ]  # fmt: skip


def mlflow_server(backend_store_uri: str, port: int) -> list[str]:
    """A tracking server on `backend_store_uri`, one worker, on loopback."""
    return [
        str(BIN / "mlflow"), "server", "--backend-store-uri", backend_store_uri,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip


@contextmanager
def started(target: Target, port: int, log: Path) -> Iterator[Server]:
    """`target` running on `port` until the block ends, its output in `log`."""
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        # mlflow starts `uvicorn` by name, so the venv's bin must be on PATH.
        path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, **target.env, "PATH": path}
        process = subprocess.Popen(target.command, stdout=output, stderr=output, env=env)
        try:
            try:
                wait_until_ready(url + target.ready_path, process)
            except NotReadyError as error:
                raise SystemExit(f"{target.name}: {error}; see {log}") from None
            yield Server(url, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def running(target: Target, port: int, log: Path) -> Iterator[str]:
    """`started`, for callers that need only the URL."""
    with started(target, port, log) as server:
        yield server.url


class NotReadyError(RuntimeError):
    """A server exited, or did not answer its readiness URL in time."""


def wait_until_ready(
    url: str, process: subprocess.Popen[bytes], timeout: float = READY_WITHIN_S
) -> None:
    """Poll `url` until it answers 200; NotReadyError if `process` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotReadyError(
                f"process {process.pid} exited with {process.returncode} before {url} answered"
            )
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise NotReadyError(f"{url} did not answer within {timeout:g} s")
