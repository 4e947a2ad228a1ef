"""The service's garbage-collector thresholds come from the environment and are checked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.settings import ServingSettings


def test_gc_thresholds_default_leaves_collections_rare() -> None:
    assert ServingSettings().gc_thresholds[0] > 700  # Python's own first-generation threshold


def test_gc_thresholds_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_GC_THRESHOLDS", "[5000, 20, 30]")
    assert ServingSettings().gc_thresholds == (5000, 20, 30)


def test_a_zero_gc_threshold_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_GC_THRESHOLDS", "[0, 20, 30]")
    with pytest.raises(ValidationError, match="gc_thresholds"):
        ServingSettings()
