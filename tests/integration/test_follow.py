"""Follow mode end to end: `bentoml serve` with 2 workers under Locust follows the champion
alias through a promotion, a version broken on purpose, and a rollback, without a restart, a
failed request or a mixed answer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import mlflow
import pandas as pd
import pytest
import redis

from loadtests.gate import read_summary
from loadtests.headless import locust_command
from loadtests.metrics_page import metric_total, series
from loadtests.servers import free_port
from registry.client import champion as registry_champion
from serving.model.declared import api_of
from serving.model.follow import Follower, FollowSettings, LoadedVersion
from streaming.champion import follow_champion
from streaming.settings import StreamSettings
from tests.integration.conftest import (
    BIN,
    REDIS_URL,
    ROOT,
    Champion,
    bentoml_serve,
    quick_settings,
    run_checked,
    stop,
    train_quickly,
)

pytestmark = [pytest.mark.integration, pytest.mark.redis]
CHANNEL = "churn:champion"


@dataclass
class Probe:
    """A client of its own, sending three customers at a time and noting which version
    answered them: one version, or "mixed" if one request's answers came from two."""

    url: str
    records: list[dict[str, Any]]
    seen: list[tuple[float, int, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                # When it was sent: a request sent before a swap may be answered after it, by
                # the batch it joined, with the version it started with.
                sent = time.monotonic()
                try:
                    response = client.post("/predict", json={"customers": self.records})
                    version = None
                    if response.is_success:
                        versions = {answer["model_version"] for answer in response.json()}
                        version = versions.pop() if len(versions) == 1 else "mixed"
                    self.seen.append((sent, response.status_code, version))
                except httpx.HTTPError:
                    self.seen.append((sent, 0, None))
                time.sleep(0.02)

    def since(self, moment: float) -> list[str | None]:
        return [version for at, _, version in self.seen if at >= moment]


def _wait(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def _broken_version(champion: Champion, good_version: str, folder: Path) -> str:
    """A version that registers fine but cannot be loaded: its pickled model is garbage."""
    client = mlflow.MlflowClient(champion.tracking_uri, champion.tracking_uri)
    good = client.get_model_version(champion.model_name, good_version)
    source = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=client.get_model_version_download_uri(champion.model_name, good_version),
            dst_path=str(folder),
            tracking_uri=champion.tracking_uri,
        )
    )
    (source / "python_model.pkl").write_bytes(b"not a pickle")
    broken = client.create_model_version(
        champion.model_name, source=source.as_uri(), run_id=good.run_id
    )
    return str(broken.version)


@pytest.fixture(scope="module")
def versions(
    tmp_path_factory: pytest.TempPathFactory, champion: Champion, customers_csv: Path
) -> Iterator[dict[str, str]]:
    """The champion (v1 of the shared registry), a second good version, a broken one, and one
    trained without the `gender` column: a request schema the running service cannot take."""
    folder = tmp_path_factory.mktemp("follow")
    settings = quick_settings(champion.tracking_uri, folder / "artifacts")
    second = train_quickly(settings, customers_csv, seed=7).version
    broken = _broken_version(champion, second, folder / "broken")
    narrower = folder / "without-gender.csv"
    table = pd.read_csv(customers_csv, dtype=str, keep_default_na=False)
    table.drop(columns=["gender"]).to_csv(narrower, index=False)
    other_schema = train_quickly(settings, narrower, seed=7).version
    yield {"first": champion.version, "second": second, "broken": broken,
           "other schema": other_schema}  # fmt: skip
    run_checked(
        [str(BIN / "python"), "-m", "training", "promote", "--version", champion.version],
        champion.env,
    )


def test_the_service_follows_a_promotion_refuses_a_broken_version_and_rolls_back_under_load(
    tmp_path: Path,
    champion: Champion,
    versions: dict[str, str],
    customers: pd.DataFrame,
    customers_csv: Path,
) -> None:
    port = free_port()
    env = {
        **champion.env,
        "CHURN_PORT": str(port),
        "CHURN_WORKERS": "2",
        "CHURN_FOLLOW_ALIAS": "true",
        "CHURN_FOLLOW_POLL_S": "30",  # long: the broadcast must do it
        "CHURN_FOLLOW_STAGGER_S": "1",
        "CHURN_FOLLOW_BROADCAST": REDIS_URL,
        "CHURN_HISTORY_URL": f"sqlite:///{tmp_path / 'history.db'}",
    }
    url = f"http://127.0.0.1:{port}"
    publisher = redis.Redis.from_url(REDIS_URL)
    records = json.loads(customers.head(3).drop(columns=["Churn"]).to_json(orient="records"))
    probe = Probe(url, records)

    def promote(version: str) -> float:
        run_checked([str(BIN / "python"), "-m", "training", "promote", "--version", version], env)
        event = {
            "name": champion.model_name,
            "alias": "champion",
            "version": version,
            "at": time.time(),
        }
        publisher.publish(CHANNEL, json.dumps(event))  # as the webhook relay does
        return time.monotonic()

    with ExitStack() as stack:
        stack.enter_context(bentoml_serve(env, tmp_path / "serve.log"))
        locust = subprocess.Popen(
            locust_command(url, 32, 32, 100, tmp_path / "load", reset_stats=False),
            cwd=ROOT,
            env={
                **os.environ,
                "LOADTEST_DATA": str(customers_csv),
                "LOADTEST_RATE": "200",
                "LOADTEST_USERS": "32",
            },
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "locust.log").open("wb"),
        )
        stack.callback(stop, locust)
        prober = threading.Thread(target=probe.run, daemon=True)
        prober.start()
        stack.callback(probe.stop.set)
        time.sleep(5)
        assert set(probe.since(0)) == {versions["first"]}

        def promote_until(version: str, what: str, result: str, count: int) -> tuple[float, float]:
            """Promote `version`, wait until `count` reloads ended in `result`, then 3 s more:
            (when the alias moved, when the workers were done)."""
            promoted = promote(version)
            _wait(
                what, lambda: metric_total(url, "churn_model_reload_total", result=result) == count
            )
            done = time.monotonic()
            time.sleep(3)
            return promoted, done

        both = {versions["first"], versions["second"]}
        promoted, swapped = promote_until(
            versions["second"], "both workers swapped to the second version", "swapped", 2
        )
        assert set(probe.since(promoted)) <= both
        assert set(probe.since(swapped)) == {versions["second"]}

        _, refused = promote_until(
            versions["broken"], "both workers refused the broken version", "load_failed", 2
        )
        assert set(probe.since(refused)) == {versions["second"]}
        card = httpx.get(f"{url}/model", timeout=10).json()
        assert card["version"] == versions["second"]

        _, refused = promote_until(
            versions["other schema"], "both workers refused the other schema", "schema_changed", 2
        )
        assert set(probe.since(refused)) == {versions["second"]}

        rolled_back, back = promote_until(
            versions["first"], "both workers rolled back to the first version", "swapped", 4
        )
        assert set(probe.since(rolled_back)) <= both
        assert set(probe.since(back)) == {versions["first"]}

        assert metric_total(url, "churn_model_swap_seconds_count") == 4
        # A worker's own poll may beat the broadcast now and then, but not most of the time.
        assert metric_total(url, "churn_model_swap_seconds_count", noticed_by="push") >= 2
        assert metric_total(url, "churn_model_version") == float(versions["first"])
        # Each worker lets go of the versions it served before and of the one it refused, once
        # the last batch holding one has finished.
        _wait(
            "each worker holding one model",
            lambda: metric_total(url, "churn_models_in_memory") == 1,
            timeout=10,
        )
        page = httpx.get(f"{url}/metrics", timeout=10).text
        info = [labels for labels, value in series(page, "churn_model_info") if value == 1]
        assert len(info) == 1 and info[0]["version"] == versions["first"]
        probe.stop.set()
        prober.join(5)
        stop(locust)

    assert all(status == 200 for _, status, _ in probe.seen), "the probe saw a failure"
    summary = read_summary(tmp_path / "load_stats.csv")
    assert summary.requests > 1000
    assert summary.failures == 0, (tmp_path / "load_failures.csv").read_text()
    shutil.rmtree(tmp_path / "broken", ignore_errors=True)


def test_a_version_whose_files_cannot_be_read_for_a_while_is_served_once_they_can(
    tmp_path: Path, champion: Champion, versions: dict[str, str]
) -> None:
    """A registry or artifact store that fails is not the version's fault: the follower does
    not refuse the version, and serves it at its next look once its files can be read."""
    name, uri = champion.model_name, champion.tracking_uri
    client = mlflow.MlflowClient(uri, uri)
    first = mlflow.artifacts.download_artifacts(
        artifact_uri=client.get_model_version_download_uri(name, versions["first"]),
        dst_path=str(tmp_path / "first"),
        tracking_uri=uri,
    )
    api = api_of(Path(first), 10)
    swapped: list[LoadedVersion] = []
    follower = Follower(
        FollowSettings(name, "champion", uri, 30, 0, None, 1, tmp_path / "models"),
        lambda: versions["first"],
        api.inputs,
        api.customer,
        api.example,
        swapped.append,
    )
    files = client.get_model_version_download_uri(name, versions["second"])
    files_dir = Path(urlparse(files).path if files.startswith("file:") else files)
    assert files_dir.is_dir(), files
    hidden = files_dir.with_name(files_dir.name + ".hidden")
    run_checked(
        [str(BIN / "python"), "-m", "training", "promote", "--version", versions["second"]],
        champion.env,
    )
    try:
        files_dir.rename(hidden)
        try:
            assert follower.check("poll") is None
            assert follower.refused is None
        finally:
            hidden.rename(files_dir)
        loaded = follower.check("poll")
        assert loaded is not None and loaded.version == versions["second"]
        assert swapped == [loaded]
    finally:
        run_checked(
            [str(BIN / "python"), "-m", "training", "promote", "--version", versions["first"]],
            champion.env,
        )


def test_the_stream_reads_its_champion_from_one_download(
    tmp_path: Path, champion: Champion, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream learns the champion's API from the same files it then serves."""
    downloaded: list[str] = []
    download = mlflow.artifacts.download_artifacts

    def counted(**kwargs: Any) -> str:
        downloaded.append(kwargs["artifact_uri"])
        return download(**kwargs)

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", counted)
    uri = champion.tracking_uri
    settings = StreamSettings(tracking_uri=uri, model_name=champion.model_name)
    held, api, _ = follow_champion(settings, tmp_path / "models")
    serving = registry_champion(mlflow.MlflowClient(uri, uri), champion.model_name, "champion")
    assert serving is not None and held.current.version == str(serving.version)
    assert len(downloaded) == 1, downloaded
    assert [path.parent for path in (tmp_path / "models").rglob("MLmodel")] == [api.model_dir]
