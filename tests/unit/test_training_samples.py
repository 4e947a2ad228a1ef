"""Training fits the baseline and the segments' centroids on samples of a large training split;
the results must match a fit on every row. The samples' bounds are lowered here so that the
suite's small table takes the sampled path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churn.features import FeatureSpec, infer_spec
from training import candidates, segmentation
from training.data import validate
from training.train import Split, split

ROWS = 1500


@pytest.fixture(scope="module")
def prepared(customers: pd.DataFrame) -> tuple[Split, FeatureSpec]:
    table = validate(customers, "Churn", "customerID", min_rows=100)
    spec = infer_spec(table.features, "customerID", "Churn")
    return split(table, seed=42).prepared(spec), spec


def test_the_baseline_fitted_on_a_sample_scores_as_the_one_fitted_on_every_row(
    prepared: tuple[Split, FeatureSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, spec = prepared
    assert len(data.train) > ROWS
    full = candidates.fit_logistic_regression(spec, data.train, data.y_train, 42)
    monkeypatch.setattr(candidates, "BASELINE_ROWS", ROWS)
    sampled = candidates.fit_logistic_regression(spec, data.train, data.y_train, 42)
    full_auc = roc_auc_score(data.y_test, full.raw_probability(data.test))
    sampled_auc = roc_auc_score(data.y_test, sampled.raw_probability(data.test))
    assert not np.allclose(full.raw_probability(data.test), sampled.raw_probability(data.test))
    assert abs(full_auc - sampled_auc) < 0.01


def test_segments_found_on_a_sample_place_every_customer_as_a_fit_on_all_of_them_does(
    prepared: tuple[Split, FeatureSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, spec = prepared
    full = segmentation.fit_segments(spec, data.train, data.y_train, 42, k=4)
    monkeypatch.setattr(segmentation, "FIT_SAMPLE", ROWS)
    monkeypatch.setattr(segmentation, "ENCODE_CHUNK", 700)
    sampled = segmentation.fit_segments(spec, data.train, data.y_train, 42, k=4)
    assert sum(p.size for p in sampled.profiles) == len(data.train)
    assert not np.allclose(full.centroids, sampled.centroids)
    for ours, theirs in zip(sampled.profiles, full.profiles, strict=True):
        assert ours.share == pytest.approx(theirs.share, abs=0.05)
        assert ours.churn_rate == pytest.approx(theirs.churn_rate, abs=0.05)
    placed = np.bincount(sampled.assign(data.train), minlength=4)
    assert placed.tolist() == [p.size for p in sampled.profiles]
