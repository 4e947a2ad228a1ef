"""Follow mode: the service serves whatever version the champion alias points at, without a
restart (CHURN_FOLLOW_ALIAS=true).

Each worker notices a promotion by polling the alias every CHURN_FOLLOW_POLL_S (with jitter),
or at once when the webhook relay publishes one on the broadcast (Redis pub/sub,
CHURN_FOLLOW_BROADCAST), which every worker of every replica hears. It then resolves the alias
to a version number, waits its turn (worker n waits (n - 1) x CHURN_FOLLOW_STAGGER_S, so the
workers do not all load at once), and in this thread, off the request path:

1. downloads and loads exactly that version;
2. refuses it if its request schema differs from the one being served (BentoML builds its
   routes and /docs once, at start-up, so a new schema needs a restart), or if it cannot score
   the example customer with a finite probability;
3. warms it up, and hands it to the service, which swaps one reference.

A version that fails to load or check is logged, counted in churn_model_reload_total{result},
and not tried again until the alias moves. A registry or artifact store that cannot be read is
not the version's fault: that is counted as `download_failed` and tried again at the next poll.
Moving the alias back is a rollback, and works the same way.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model as MLflowModel
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from churn.model import MODEL_DESCRIPTION_FILE, ChurnModel
from registry.client import champion, moved_at
from serving import metrics
from serving.model.readiness import can_score
from serving.model.schema import customer_columns

log = logging.getLogger(__name__)

CHANNEL = "churn:champion"
WARM_UP_ROUNDS = 3
Notice = Literal["poll", "push"]


@dataclass(frozen=True)
class LoadedVersion:
    """A registered version, loaded and checked, ready to be served."""

    version: str
    run_id: str
    model: ChurnModel
    model_dir: Path
    description: dict[str, Any]
    tags: dict[str, str]
    # When the alias moved to it (a promotion by `training promote`), else when it was noticed.
    changed_at: float
    noticed_by: Notice


class DownloadError(Exception):
    """The version's files could not be fetched: the store's fault, not the version's, so it
    is tried again at the next poll."""


class RefusedError(Exception):
    def __init__(self, result: str, message: str) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class FollowSettings:
    model_name: str
    alias: str
    tracking_uri: str
    poll_seconds: float
    stagger_seconds: float
    broadcast_url: str | None
    worker_index: int
    folder: Path
    # Look at the alias as soon as the follower starts, not a poll later (the challenger, which
    # nothing loaded before).
    check_at_start: bool = False


@dataclass(frozen=True)
class FollowMetrics:
    """Where a follower counts what became of each version, and how long swaps took."""

    reloaded: Callable[[str], None] = metrics.count_model_reload
    swapped: Callable[[Notice, float], None] = metrics.observe_swap


class Follower:
    def __init__(
        self,
        settings: FollowSettings,
        serving_version: Callable[[], str],
        request_inputs: list[dict[str, Any]],
        customer_model: type[BaseModel],
        example: dict[str, Any],
        swap: Callable[[LoadedVersion], None],
        counted: FollowMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.counted = counted or FollowMetrics()
        self.serving_version = serving_version
        self.request_inputs = request_inputs
        self.customer_model = customer_model
        self.example = example
        self.swap = swap
        self._client: MlflowClient | None = None
        # The version last refused: tried again only once the alias has moved elsewhere.
        self.refused: str | None = None
        self._wake = threading.Event()
        self._pushed_at: float | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._said_unset = False

    def start(self) -> None:
        self._connect()
        self._threads.append(threading.Thread(target=self._run, name="follow", daemon=True))
        if self.settings.broadcast_url:
            listener = threading.Thread(target=self._listen, name="follow-push", daemon=True)
            self._threads.append(listener)
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(5)

    def _run(self) -> None:
        if self.settings.check_at_start:
            self.check("poll")
        while not self._stop.is_set():
            pushed = self._wake.wait(self.settings.poll_seconds * random.uniform(0.8, 1.2))
            if self._stop.is_set():
                return
            self._wake.clear()
            self.check("push" if pushed else "poll")

    def check(self, noticed_by: Notice) -> LoadedVersion | None:
        """Serve the alias's version if it is new and sound; what was swapped in, if anything."""
        try:
            found = champion(self.client, self.settings.model_name, self.settings.alias)
        except Exception as error:
            # The registry's fault, as a failed download is: counted alike, tried at the next poll.
            self.counted.reloaded("download_failed")
            log.warning("Follow: cannot read %s: %s", self._alias(), _first_line(error))
            return None
        if found is None:
            if not self._said_unset:
                log.warning("Follow: %s is not set; looking again every %g s", self._alias(),
                            self.settings.poll_seconds)  # fmt: skip
                self._said_unset = True
            return None
        self._said_unset = False
        version, serving = str(found.version), self.serving_version()
        if version == serving or version == self.refused:
            if version == serving:
                self.refused = None
            return None
        noticed = time.time()
        time.sleep(self.settings.stagger_seconds * max(self.settings.worker_index - 1, 0))
        try:
            loaded = self.load(version, noticed, noticed_by)
        except (MlflowException, DownloadError) as error:
            self.counted.reloaded("download_failed")
            log.warning("Follow: cannot read version %s from the registry yet (trying again "
                        "at the next poll): %s", version, _first_line(error))  # fmt: skip
            return None
        except RefusedError as refusal:
            self.refused = version
            self.counted.reloaded(refusal.result)
            log.error("Follow: not serving %s version %s as %s (%s): %s",
                      self.settings.model_name, version, self.settings.alias, refusal.result,
                      refusal)  # fmt: skip
            return None
        self.swap(loaded)
        self.refused = None
        self.counted.reloaded("swapped")
        self.counted.swapped(noticed_by, time.time() - loaded.changed_at)
        return loaded

    def load(self, version: str, noticed: float, noticed_by: Notice) -> LoadedVersion:
        """Exactly `version`, loaded, checked and warmed up; RefusedError if it is unfit."""
        return self.open(fetch_version(self.client, self.settings, version), noticed, noticed_by)

    def open(self, fetched: FetchedVersion, noticed: float, noticed_by: Notice) -> LoadedVersion:
        """A version already fetched, loaded, checked and warmed up; RefusedError if unfit."""
        version, local, folder = fetched.version, fetched.local, fetched.folder
        try:
            inputs = MLflowModel.load(str(local)).signature.inputs.to_dict()
            if inputs != self.request_inputs:
                raise RefusedError(
                    "schema_changed",
                    "its request schema differs from the one being served; BentoML builds "
                    "/predict and /docs at start-up, so restart the service (or redeploy) to "
                    "serve it",
                )
            model = mlflow.pyfunc.load_model(str(local)).unwrap_python_model()
            metrics.hold_model(model)
            description = json.loads((local / "artifacts" / MODEL_DESCRIPTION_FILE).read_text())
        except RefusedError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        except Exception as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise RefusedError("load_failed", _first_line(error)) from None
        if not isinstance(model, ChurnModel) or not can_score(
            model, self.customer_model, self.example
        ):
            shutil.rmtree(folder, ignore_errors=True)
            raise RefusedError(
                "check_failed", "it gives no finite churn probability for the example customer"
            )
        customer = customer_columns([self.customer_model.model_validate(self.example)])
        for _ in range(WARM_UP_ROUNDS):
            model.decide(customer)
        tags = dict(fetched.model_version.tags)
        changed = moved_at(fetched.registered_tags, self.settings.alias, version)
        if noticed_by == "push" and self._pushed_at is not None:
            changed = min(changed or self._pushed_at, self._pushed_at)
        return LoadedVersion(
            version,
            str(fetched.model_version.run_id),
            model,
            local,
            description,
            tags,
            changed if changed is not None else noticed,
            noticed_by,
        )

    def _connect(self) -> None:
        """Make the registry client before the worker takes traffic. Made later, in the follow
        thread, its imports and the store's schema check hold the GIL for up to 200 ms at a
        time, and every request in flight would wait behind them during the first swap."""
        for attempt in range(3):
            try:
                self._client = self._new_client()
                return
            except Exception as error:  # the follow thread tries again on its first check
                # Workers opening one SQLite store together can meet on its schema check.
                log.warning("Follow: cannot open the registry yet (attempt %d): %s",
                            attempt + 1, _first_line(error))  # fmt: skip
                time.sleep(0.5 * (attempt + 1))

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _new_client(self) -> MlflowClient:
        return MlflowClient(self.settings.tracking_uri, self.settings.tracking_uri)

    def _listen(self) -> None:
        """Wake the follower whenever the relay publishes a promotion; reconnect on errors."""
        import redis

        failures = 0
        while not self._stop.is_set():
            try:
                connection = redis.Redis.from_url(
                    str(self.settings.broadcast_url), socket_timeout=5, socket_connect_timeout=5
                )
                subscription = connection.pubsub(ignore_subscribe_messages=True)
                subscription.subscribe(CHANNEL)
                failures = 0
                while not self._stop.is_set():
                    message = subscription.get_message(timeout=1.0)
                    if message is not None:
                        self._pushed(message.get("data"))
            except Exception as error:
                failures += 1
                log.warning("Follow: the broadcast at %s failed: %s", self.settings.broadcast_url,
                            _first_line(error))  # fmt: skip
                self._stop.wait(min(30.0, 2.0**failures))

    def _pushed(self, data: Any) -> None:
        try:
            event = json.loads(data)
        except (TypeError, ValueError):
            return
        if isinstance(event, dict) and event.get("name") == self.settings.model_name:
            at = event.get("at")
            self._pushed_at = float(at) if isinstance(at, int | float) else time.time()
            self._wake.set()

    def _alias(self) -> str:
        return f"models:/{self.settings.model_name}@{self.settings.alias}"


@dataclass(frozen=True)
class FetchedVersion:
    """A registered version's files, downloaded into a folder of their own."""

    version: str
    model_version: ModelVersion
    registered_tags: dict[str, str]
    folder: Path
    local: Path


def fetch_version(client: MlflowClient, settings: FollowSettings, version: str) -> FetchedVersion:
    """Download exactly `version` into a new folder under settings.folder. Registry reads that
    fail raise as they are, and a failed download is a DownloadError: neither is the version's
    fault, so the next poll tries again."""
    name = settings.model_name
    model_version = client.get_model_version(name, version)
    source = client.get_model_version_download_uri(name, version)
    registered_tags = dict(client.get_registered_model(name).tags)
    settings.folder.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"v{version}-", dir=settings.folder))
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(folder), tracking_uri=settings.tracking_uri
        )
    except Exception as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise DownloadError(_first_line(error)) from None
    return FetchedVersion(version, model_version, registered_tags, folder, Path(local))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
