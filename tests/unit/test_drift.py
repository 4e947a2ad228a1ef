"""Drift: the reference profile, PSI against hand-computed values, and counting recorded rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn.deciles import Deciles
from churn.features import MISSING_CATEGORY, infer_spec
from churn.reference import PREDICTION, FeatureBins, ReferenceProfile
from history.customer_ids import CustomerIds
from history.database import engine_for
from history.drift_counts import BUCKET_SECONDS, DriftCounter, bucket_of
from history.reader import drift_counts
from history.records import ScoredBatch, rows_of
from history.schema import migrate
from history.sinks import SqliteSink
from monitoring.drift import drift_report
from monitoring.psi import psi, stability
from monitoring.recorded_drift import recent_drift
from monitoring.settings import DriftSettings, parse_duration
from serving import metrics


@pytest.mark.parametrize(
    ("reference", "counts", "expected"),
    [
        # (0.7 - 0.5) ln(0.7 / 0.5) + (0.3 - 0.5) ln(0.3 / 0.5) = 0.067294 + 0.102165
        ([0.5, 0.5], [70, 30], 0.169459),
        # An empty bin counts as 1e-4: 2 x 0.25 ln 2 + 2 x (1e-4 - 0.25) ln(1e-4 / 0.25)
        # = 0.346574 + 2 x 0.2499 x 7.824046 = 0.346574 + 3.910458
        ([0.25, 0.25, 0.25, 0.25], [50, 50, 0, 0], 4.257032),
        ([0.2, 0.3, 0.5], [20, 30, 50], 0.0),
    ],
)
def test_psi_matches_the_hand_computed_value(
    reference: list[float], counts: list[int], expected: float
) -> None:
    assert psi(reference, counts) == pytest.approx(expected, abs=1e-6)


def test_no_rows_is_no_psi_and_the_thresholds_are_0_1_and_0_25() -> None:
    assert psi([0.5, 0.5], [0, 0]) is None
    assert [stability(v) for v in (None, 0.0999, 0.1, 0.2499, 0.25)] == [
        "no data", "stable", "moderate", "moderate", "significant",
    ]  # fmt: skip


def test_numeric_bins_lie_between_training_deciles_with_one_for_missing() -> None:
    bins = FeatureBins("tenure", "numeric", edges=(10.0, 20.0))
    values = np.array([5.0, 10.0, 15.0, 20.0, 99.0, math.nan])
    assert bins.assign(values).tolist() == [0, 1, 1, 2, 2, 3]
    assert bins.labels == ("[-inf, 10)", "[10, 20)", "[20, inf)", "__missing__")


def test_category_bins_have_one_for_unseen_levels_and_one_for_missing() -> None:
    bins = FeatureBins("plan", "categorical", levels=("basic", "pro"))
    values = np.array(["pro", "gold", MISSING_CATEGORY, "basic"], dtype=object)
    assert bins.assign(values).tolist() == [1, 2, 3, 0]


def _profile() -> tuple[ReferenceProfile, pd.DataFrame]:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {"tenure": rng.uniform(0, 72, 1000), "plan": rng.choice(["basic", "pro"], 1000)}
    )
    spec = infer_spec(table)
    scores = rng.random(1000)
    profile = ReferenceProfile.fit(spec, spec.prepare(table), Deciles.from_scores(scores), scores)
    return profile, table


def test_the_reference_holds_the_training_shares_and_survives_json() -> None:
    profile, _ = _profile()
    tenure = next(bins for bins in profile.features if bins.feature == "tenure")
    assert len(tenure.edges) == 9 and sum(tenure.shares) == pytest.approx(1.0)
    assert tenure.shares[:10] == pytest.approx([0.1] * 10, abs=0.002)
    assert profile.prediction.shares[:10] == pytest.approx([0.1] * 10, abs=0.002)
    assert ReferenceProfile.from_dict(profile.to_dict()) == profile


def _rows(customers: list[dict[str, object]], deciles: list[int], at: datetime) -> list[tuple]:  # type: ignore[type-arg]
    batch = ScoredBatch(
        at,
        "api",
        "churn",
        [
            {
                "customer_id": f"c{n}",
                "model_version": "3",
                "churn_probability": 0.5,
                "churn": True,
                "risk_tier": "high",
                "decile": decile,
                "segment": "s",
                "action": "call",
                "expected_value": 1.0,
            }
            for n, decile in enumerate(deciles)
        ],
        customers,
    )
    return rows_of(batch, CustomerIds(), feature_sample=1.0)


def test_recorded_rows_are_counted_into_the_reference_bins_per_bucket() -> None:
    profile, table = _profile()
    counter = DriftCounter(infer_spec(table), profile, "3")
    at = datetime(2026, 12, 1, 10, 7, tzinfo=UTC)
    rows = _rows([{"tenure": 1.0, "plan": "pro"}, {"tenure": None, "plan": "gold"}], [1, 10], at)
    counts = {(c.feature, c.bin): c.rows for c in counter.count(rows)}
    plan = next(bins for bins in profile.features if bins.feature == "plan")
    assert counts == {
        (PREDICTION, 0): 1,
        (PREDICTION, 9): 1,
        ("tenure", 0): 1,
        ("tenure", 10): 1,  # missing
        ("plan", plan.levels.index("pro")): 1,
        ("plan", 2): 1,  # unseen
    }
    assert {c.bucket for c in counter.count(rows)} == {at.replace(minute=5)}
    assert bucket_of(at).timestamp() % BUCKET_SECONDS == 0


def test_drift_is_summed_over_the_window_and_a_shifted_feature_is_significant(
    tmp_path: Path,
) -> None:
    profile, table = _profile()
    engine = engine_for(f"sqlite:///{tmp_path / 'history.db'}")
    migrate(engine)
    sink = SqliteSink(engine.url)
    counter = DriftCounter(infer_spec(table), profile, "3")
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    shifted = [{"tenure": 70.0, "plan": p} for p in table["plan"].head(500)]
    old = _rows(shifted, [1] * 500, now - timedelta(days=2))  # outside a 24 h window
    recent = _rows(
        [{"tenure": t, "plan": p} for t, p in zip(table["tenure"], table["plan"], strict=True)],
        [int(d) for d in np.resize(np.arange(1, 11), 1000)],
        now - timedelta(hours=1),
    )
    sink.write(old, counter.count(old))
    sink.write(recent, counter.count(recent))
    counts = drift_counts(engine, "3", now - timedelta(hours=24), now)
    assert sum(counts[PREDICTION].values()) == 1000
    report = drift_report(profile, counts, "3", now - timedelta(hours=24), now)
    day = DriftSettings(window=timedelta(hours=24))
    assert recent_drift(engine, profile, "3", day, now) == report
    assert report.prediction.psi == pytest.approx(0.0, abs=1e-3)
    assert all(d.stability == "stable" for d in report.features)

    sink.write(old_now := _rows(shifted, [1] * 500, now), counter.count(old_now))
    counts = drift_counts(engine, "3", now - timedelta(hours=24), now + timedelta(minutes=5))
    report = drift_report(profile, counts, "3", now, now)
    by_feature = {d.feature: d for d in report.features}
    assert by_feature["tenure"].stability == "significant"
    assert by_feature["plan"].stability == "stable"
    assert report.features[0].feature == "tenure"  # most drifted first
    assert report.prediction.stability == "significant"


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("90m", 5400), ("2d", 172800), ("30s", 30)]
)
def test_the_drift_window_reads_as_a_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds
    assert DriftSettings(window=text).window == timedelta(seconds=seconds)  # type: ignore[arg-type]


def test_a_bad_drift_window_names_the_form_it_wants() -> None:
    with pytest.raises(ValueError, match="24h"):
        DriftSettings(window="a day")  # type: ignore[arg-type]


def test_a_window_with_too_few_rows_claims_no_psi_and_exports_nan() -> None:
    profile, _ = _profile()
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    one_customer = {PREDICTION: {0: 1}, "tenure": {9: 1}}
    report = drift_report(profile, one_customer, "3", now - timedelta(hours=24), now)
    assert report.prediction.psi is None and report.prediction.stability == "too few rows"
    assert report.prediction.rows == 1
    tenure = next(d for d in report.features if d.feature == "tenure")
    assert tenure.psi is None and tenure.stability == "too few rows"
    assert {d.stability for d in report.features if d.feature != "tenure"} == {"no data"}
    enough = {PREDICTION: {0: 500}}
    assert drift_report(profile, enough, "3", now, now).prediction.stability == "significant"
    assert drift_report(profile, one_customer, "3", now, now, min_rows=1).prediction.psi > 0.25

    metrics.record_drift(report)
    (exported,) = [sample.value for m in metrics.PREDICTION_PSI.collect() for sample in m.samples]
    assert math.isnan(exported)
