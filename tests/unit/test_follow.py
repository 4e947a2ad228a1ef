"""Follow mode's pure parts: when an alias moved, counting drift across a swap, push hints."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from prometheus_client import REGISTRY

from churn.deciles import Deciles
from churn.features import infer_spec
from churn.reference import PREDICTION, ReferenceProfile
from history.customer_ids import CustomerIds
from history.drift_counts import DriftCounter
from history.records import ScoredBatch, rows_of
from registry.client import moved_at, moved_tag, moved_value
from serving.model.follow import Follower, FollowSettings
from webhook.relay import FOLLOW_CHANNEL


def test_the_alias_move_time_counts_only_for_the_version_it_names() -> None:
    tags = {moved_tag("champion"): moved_value("3", at=1_700_000_000.0)}
    assert moved_at(tags, "champion", "3") == 1_700_000_000.0
    assert moved_at(tags, "champion", "4") is None  # moved in the MLflow UI since
    assert moved_at(tags, "challenger", "3") is None
    assert moved_at({moved_tag("champion"): "not json"}, "champion", "3") is None


def _rows(version: str, count: int) -> list[tuple]:  # type: ignore[type-arg]
    batch = ScoredBatch(
        datetime(2026, 12, 1, 10, tzinfo=UTC),
        "api",
        "churn",
        [{"customer_id": f"c{n}", "model_version": version, "churn_probability": 0.5,
          "churn": True, "risk_tier": "high", "decile": 3, "segment": "s", "action": "a",
          "expected_value": 1.0} for n in range(count)],
        [{"tenure": 5.0}] * count,
    )  # fmt: skip
    return rows_of(batch, CustomerIds(), feature_sample=0.0)


def test_after_a_swap_rows_of_both_versions_are_counted_against_their_own_reference() -> None:
    table = pd.DataFrame({"tenure": np.linspace(0, 72, 500)})
    spec = infer_spec(table)
    scores = np.linspace(0, 1, 500)
    reference = ReferenceProfile.fit(spec, table, Deciles.from_scores(scores), scores)
    counter = DriftCounter(spec, reference, "1").with_version(spec, reference, "2")
    counts = counter.count([*_rows("1", 3), *_rows("2", 5), *_rows("9", 7)])
    by_version = {c.model_version: c.rows for c in counts if c.feature == PREDICTION}
    assert by_version == {"1": 3, "2": 5}


def test_a_counter_that_followed_many_swaps_keeps_only_the_last_two_versions() -> None:
    table = pd.DataFrame({"tenure": np.linspace(0, 72, 500)})
    spec = infer_spec(table)
    scores = np.linspace(0, 1, 500)
    reference = ReferenceProfile.fit(spec, table, Deciles.from_scores(scores), scores)
    counter = DriftCounter(spec, reference, "1")
    for version in ("2", "3", "4"):
        counter = counter.with_version(spec, reference, version)
    assert list(counter.profiles) == ["3", "4"]


def test_a_push_wakes_the_follower_only_for_its_own_model(tmp_path: Path) -> None:
    settings = FollowSettings("churn", "champion", "sqlite://", 30, 0, None, 1, tmp_path)
    follower = Follower(settings, lambda: "1", [], object, {}, lambda loaded: None)  # type: ignore[arg-type]
    follower._pushed('{"name": "other", "version": "2"}')
    follower._pushed("not json")
    assert not follower._wake.is_set()
    follower._pushed('{"name": "churn", "version": "2", "at": 1700000000}')
    assert follower._wake.is_set() and follower._pushed_at == 1_700_000_000.0


def test_the_relay_publishes_where_the_service_listens() -> None:
    from serving.model.follow import CHANNEL

    assert FOLLOW_CHANNEL == CHANNEL


class UnreachableRegistry:
    def get_model_version_by_alias(self, name: str, alias: str) -> None:
        raise ConnectionError("the registry is down")


def test_a_registry_that_cannot_be_read_when_polled_is_counted_as_a_failed_download(
    tmp_path: Path,
) -> None:
    settings = FollowSettings("churn", "champion", "sqlite://", 30, 0, None, 1, tmp_path)
    follower = Follower(settings, lambda: "1", [], object, {}, lambda loaded: None)  # type: ignore[arg-type]
    follower._client = UnreachableRegistry()  # type: ignore[assignment]
    before = _reloads("download_failed")
    assert follower.check("poll") is None
    assert _reloads("download_failed") == before + 1


def _reloads(result: str) -> float:
    value = REGISTRY.get_sample_value("churn_model_reload_total", {"result": result})
    return value or 0.0
