"""What Prometheus needs beyond request metrics, refreshed by one worker per replica.

Every `refresh_seconds`, in a thread of its own and never on the request path: the drift of the
served version over the drift window (from the counts the history writer keeps), the realised
performance `training performance` stored per version, and the version the registry's
champion alias points at. Each part that fails is logged and counted; the others go on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from churn.reference import ReferenceProfile
from history.reader import realised_performance
from history.store import History
from monitoring.recorded_drift import recent_drift
from monitoring.settings import DriftSettings
from serving import metrics
from serving.model.served import Served

log = logging.getLogger(__name__)


@dataclass
class Monitor:
    history: History
    drift: DriftSettings
    reference: ReferenceProfile | None
    model_name: str
    model_version: str
    # The champion alias's version in the registry, or None when it points nowhere.
    champion_version: Callable[[], str | None] | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, old: Served, new: Served) -> None:
        """Measure the version now served (a listener of serving.model.served.ServedModel)."""
        self.model_version, self.reference = new.version, new.model.insight.reference

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.drift.refresh_seconds)

    def refresh(self, now: datetime | None = None) -> None:
        self._part("drift", lambda: self._drift(now or datetime.now(UTC)))
        self._part("realised", self._realised)
        if self.champion_version is not None:
            self._part("registry", self._champion)

    def _drift(self, now: datetime) -> None:
        if self.reference is None:
            return
        metrics.record_drift(
            recent_drift(self.history.engine, self.reference, self.model_version, self.drift, now)
        )

    def _realised(self) -> None:
        metrics.record_realised(realised_performance(self.history.engine, self.model_name))

    def _champion(self) -> None:
        assert self.champion_version is not None
        version = self.champion_version()
        if version is not None:
            metrics.record_registry_champion(version)

    def _part(self, name: str, refresh: Callable[[], None]) -> None:
        try:
            refresh()
        except Exception as error:
            log.warning("Monitoring: refreshing %s failed: %s", name, str(error).splitlines()[0])
            metrics.count_monitor_error(name)
