"""Reasons, segments, deciles and the playbook of a trained model."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pandas as pd
import pytest
from catboost import CatBoostClassifier

from churn.columns import Columns
from churn.deciles import Deciles
from churn.explain import contributions, reason_texts
from churn.linear_scorer import LinearScorer
from churn.model import ChurnModel, Insight
from churn.playbook import NO_ACTION
from churn.segments import Segmenter

CANDIDATES = ["logistic_regression", "catboost"]


def raw_score(estimator: object, features: pd.DataFrame) -> np.ndarray:
    """The model's log-odds, which contributions plus base value must reproduce."""
    if isinstance(estimator, LinearScorer):
        return estimator.log_odds(features)
    if isinstance(estimator, CatBoostClassifier):
        return np.asarray(estimator.predict(features, prediction_type="RawFormulaVal"))
    raise TypeError(f"Cannot explain a {type(estimator).__name__}")


@pytest.mark.parametrize("candidate", CANDIDATES)
def test_contributions_plus_base_value_reproduce_the_raw_score(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, candidate: str
) -> None:
    model = trained[candidate]
    features = model.spec.prepare(customers.head(200))
    matrix, base = contributions(model.insight.explainer, model.spec, features)
    assert matrix.shape == (200, len(model.spec.names))
    np.testing.assert_allclose(
        matrix.sum(axis=1) + base, raw_score(model.estimator, features), atol=1e-6
    )
    probability = 1 / (1 + np.exp(-(matrix.sum(axis=1) + base)))
    np.testing.assert_allclose(probability, model.churn_probability(customers.head(200)), atol=1e-6)


@pytest.mark.parametrize("candidate", CANDIDATES)
def test_the_top_three_reasons_are_the_largest_contributions(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, candidate: str
) -> None:
    model = trained[candidate]
    reasons = model.explain(customers.head(5))
    matrix, _ = contributions(
        model.insight.explainer, model.spec, model.spec.prepare(customers.head(5))
    )
    for row, found in enumerate(reasons):
        assert len(found) == 3
        sizes = [abs(r.contribution) for r in found]
        assert sizes == sorted(sizes, reverse=True)
        assert sizes[0] == pytest.approx(np.abs(matrix[row]).max())
        for reason in found:
            assert reason.direction == ("raises risk" if reason.contribution > 0 else "lowers risk")
            assert reason.feature in model.spec.names


@pytest.mark.parametrize("candidate", CANDIDATES)
def test_explaining_gives_the_probability_and_reasons_of_scoring_and_explain(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, candidate: str
) -> None:
    model = trained[candidate]
    probability, reasons = model.explain_with_probability(customers.head(20))
    np.testing.assert_allclose(probability, model.churn_probability(customers.head(20)), atol=1e-6)
    assert reasons == model.explain(customers.head(20))


@pytest.mark.parametrize("candidate", CANDIDATES)
def test_scored_files_spell_out_the_same_reasons_as_the_api(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, candidate: str
) -> None:
    model = trained[candidate]
    some = customers.head(50).copy()
    some.loc[some.index[:5], model.spec.numeric[0]] = ""  # a blank number is reported as None
    features = model.spec.prepare(some)
    matrix, _ = contributions(model.insight.explainer, model.spec, features)
    expected = [
        "; ".join(f"{r.feature}={r.value} ({r.contribution:+.3f})" for r in found)
        for found in model.explain(some)
    ]
    assert list(reason_texts(matrix, model.spec, features)) == expected


def test_segments_are_fitted_on_the_training_split_numbered_by_risk_and_named(
    trained: dict[str, ChurnModel], customers: pd.DataFrame
) -> None:
    segments = trained["catboost"].insight.segments
    assert 3 <= len(segments.profiles) <= 6
    assert set(segments.silhouette) == {3, 4, 5, 6}
    assert len(segments.profiles) == max(segments.silhouette, key=lambda k: segments.silhouette[k])
    assert sum(p.size for p in segments.profiles) == int(len(customers) * 0.6)
    names = [p.name for p in segments.profiles]
    assert len(set(names)) == len(names)
    assert all(p.name == ", ".join(t.phrase for t in p.traits) for p in segments.profiles)
    rates = [p.churn_rate for p in segments.profiles]
    assert rates == sorted(rates, reverse=True)
    assert [p.segment_id for p in segments.profiles] == list(range(len(segments.profiles)))


def test_every_decision_carries_decile_segment_and_action(
    trained: dict[str, ChurnModel], customers: pd.DataFrame
) -> None:
    decisions = trained["logistic_regression"].decide(customers.head(300))
    assert set(decisions.decile) <= set(range(1, 11))
    riskiest = decisions.decile == 1
    assert decisions.probability[riskiest].min() >= decisions.probability[~riskiest].max() - 1e-12
    assert set(decisions.segment_id) <= set(
        range(len(trained["logistic_regression"].insight.segments.profiles))
    )
    assert (decisions.expected_value >= 0).all()
    assert ((decisions.action == NO_ACTION) == (decisions.expected_value == 0)).all()


@pytest.mark.parametrize("candidate", CANDIDATES)
def test_decisions_carry_the_models_own_probabilities(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, candidate: str
) -> None:
    model = trained[candidate]
    assert model.insight.playbook.uses_reasons  # so decide takes its contributions shortcut
    np.testing.assert_allclose(
        model.decide(customers.head(300)).probability,
        model.churn_probability(customers.head(300)),
        rtol=0,
        atol=1e-12,
    )


@pytest.mark.parametrize("candidate", CANDIDATES)
@pytest.mark.parametrize("with_reasons", [True, False])
def test_columns_get_the_same_decisions_and_reasons_as_a_frame(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, candidate: str, with_reasons: bool
) -> None:
    """The service scores `Columns`; training and files score DataFrames. Both must agree,
    also when a playbook without reasons makes the model score the batch itself."""
    model = trained[candidate]
    if not with_reasons:
        playbook = replace(model.insight.playbook, rules=())
        model = replace_insight(model, replace(model.insight, playbook=playbook))
    frame = customers.head(50)
    columns = Columns({str(name): frame[name].to_numpy(dtype=object) for name in frame}, len(frame))
    from_frame, from_columns = model.decide(frame), model.decide(columns)
    for field in fields(from_frame):
        np.testing.assert_array_equal(
            getattr(from_columns, field.name), getattr(from_frame, field.name), err_msg=field.name
        )
    assert model.explain(columns) == model.explain(frame)


def replace_insight(model: ChurnModel, insight: Insight) -> ChurnModel:
    return ChurnModel(
        model.spec, model.estimator, model.candidate, model.threshold, model.tiers, insight
    )


@pytest.mark.parametrize("table", ["frame", "columns"])
def test_segments_encode_scaled_numerics_and_one_column_per_kept_level(table: str) -> None:
    segmenter = Segmenter(
        numeric=("tenure",),
        means=np.array([10.0]),
        scales=np.array([2.0]),
        medians=np.array([12.0]),
        one_hot=(("plan", ("basic", "pro")), ("paper", ("Yes",))),
        centroids=np.zeros((1, 4)),
        profiles=(),
    )
    frame = pd.DataFrame(
        {
            "tenure": [14.0, np.nan, 10.0],
            "plan": ["pro", "gold", "basic"],
            "paper": ["Yes", "No", "Yes"],
        }
    )
    features = (
        frame
        if table == "frame"
        else Columns(
            {name: frame[name].to_numpy(dtype=object) for name in ("tenure", "plan", "paper")}, 3
        )
    )
    np.testing.assert_array_equal(
        segmenter.encode(features), [[2.0, 0, 1, 1], [1.0, 0, 0, 0], [0.0, 1, 0, 1]]
    )


def test_deciles_follow_the_training_population() -> None:
    deciles = Deciles.from_scores(np.linspace(0, 1, 1001))
    assert deciles.assign(np.array([0.99, 0.85, 0.5, 0.05])).tolist() == [1, 2, 5, 10]
