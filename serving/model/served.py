"""The version a worker serves: its model, its card, and where its files are, and the one
holder of it.

`ServedModel` holds one `Served` and replaces it whole when follow mode swaps versions, so a
batch that read `current` once is scored, labelled and recorded by one version only. Whatever
else depends on the served version (the history's drift counts, the monitor, the console, the
metrics) listens to the swap instead of keeping a copy of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn.model import ChurnModel


@dataclass(frozen=True)
class Served:
    model: ChurnModel
    version: str
    run_id: str
    # What GET /model answers.
    info: dict[str, Any]
    # The MLflow model folder, which file scoring loads in its own process.
    model_dir: Path

    @property
    def name(self) -> str:
        return str(self.info["name"])

    @classmethod
    def of(
        cls,
        model: ChurnModel,
        name: str,
        version: str,
        run_id: str,
        description: dict[str, Any],
        version_tags: dict[str, str],
        model_dir: Path,
        source: str,
    ) -> Served:
        """The served version and its card; `source` says where it was loaded from (the
        BentoML model's tag, or the registry URI in follow mode)."""
        return cls(
            model,
            version,
            run_id,
            card(model, name, version, run_id, description, version_tags, source),
            model_dir,
        )


# Told the version served before and the one served from now on.
SwapListener = Callable[[Served, Served], None]


class ServedModel:
    """The version this worker serves (`current`, a plain attribute: the request path reads it
    once per batch) and who is told when it changes."""

    def __init__(self, first: Served) -> None:
        self.current = first
        self._listeners: list[SwapListener] = []

    def on_swap(self, listener: SwapListener) -> None:
        self._listeners.append(listener)

    def swap(self, new: Served) -> None:
        """Serve `new` from the next batch on, then tell every listener, in the order they
        subscribed; a batch in flight finishes with the version it started with."""
        old, self.current = self.current, new
        for listener in self._listeners:
            listener(old, new)


def card(
    model: ChurnModel,
    name: str,
    version: str,
    run_id: str,
    description: dict[str, Any],
    version_tags: dict[str, str],
    source: str,
) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "run_id": run_id,
        "bento_model": source,
        "candidate": model.candidate,
        # None: the estimator's probabilities are served as they are.
        "calibration": None if model.calibration is None else model.calibration.describe(),
        "threshold": model.threshold,
        "risk_tiers": description["risk_tiers"],
        "test_metrics": test_metrics(version_tags),
        "features": description["feature_spec"]["features"],
        "id_column": description["feature_spec"]["id_column"],
        "segments": description.get("segments", []),
        "playbook_version": description.get("playbook_version"),
        "playbook": description.get("playbook"),
        "deciles": description.get("deciles", []),
    }


def test_metrics(version_tags: dict[str, str]) -> dict[str, float]:
    return {
        key.removeprefix("test."): float(value)
        for key, value in version_tags.items()
        if key.startswith("test.")
    }


def bento_version_tags(metadata: dict[str, Any]) -> dict[str, str]:
    """The version's registry tags, as `make bento` stored them with the BentoML model."""
    return dict(json.loads(metadata.get("version_tags", "{}")))
