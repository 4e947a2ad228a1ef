"""churn_models_in_memory follows the models a worker still holds."""

from __future__ import annotations

import gc

import prometheus_client

from serving import metrics


class Model:
    pass


def _held() -> float:
    return next(
        sample.value
        for family in prometheus_client.REGISTRY.collect()
        for sample in family.samples
        if sample.name == "churn_models_in_memory"
    )


def test_a_model_counts_while_held_and_stops_counting_once_freed() -> None:
    start = _held()
    old, new = Model(), Model()
    metrics.hold_model(old)
    metrics.hold_model(new)
    assert _held() == start + 2
    del old
    gc.collect()
    assert _held() == start + 1
    del new
    gc.collect()
    assert _held() == start
