from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from category_encoders import CatBoostEncoder
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from churn.features import FeatureSpec, infer_spec
from churn.linear_scorer import LinearScorer
from training.candidates import baseline_encoding, fit_logistic_regression
from training.data import validate


def _target_encoded(spec: FeatureSpec, features: pd.DataFrame) -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("categorical", CatBoostEncoder(random_state=0), spec.categorical),
            (
                "numeric",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                spec.numeric,
            ),
        ]
    )


def _baseline(spec: FeatureSpec, features: pd.DataFrame) -> ColumnTransformer:
    return baseline_encoding(spec, features, smoothing=1.0, knots=5, seed=0)


ENCODINGS = {"target-encoded, straight": _target_encoded, "the baseline's": _baseline}


def _pipeline_and_scorer(
    customers: pd.DataFrame, encoding: str = "the baseline's"
) -> tuple[Pipeline, LinearScorer, pd.DataFrame]:
    table = validate(customers, "Churn", "customerID", min_rows=100)
    spec = infer_spec(table.features)
    features = spec.prepare(table.features)
    pipeline = Pipeline(
        [
            ("encode", ENCODINGS[encoding](spec, features)),
            ("model", LogisticRegression(max_iter=2000)),
        ]
    ).fit(features, table.target)
    return pipeline, LinearScorer.from_pipeline(pipeline, features), features


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_compiled_scorer_matches_the_sklearn_pipeline(
    customers: pd.DataFrame, encoding: str
) -> None:
    pipeline, scorer, features = _pipeline_and_scorer(customers, encoding)
    unusual = features.head(50).copy()
    unusual.loc[unusual.index[0], "InternetService"] = "Satellite"  # never seen in training
    unusual.loc[unusual.index[1], "tenure"] = np.nan  # imputed with the training median
    unusual.loc[unusual.index[2], "tenure"] = 10_000.0  # beyond the last knot
    unusual.loc[unusual.index[3], "MonthlyCharges"] = -50.0  # before the first
    for frame in (features, unusual):
        np.testing.assert_allclose(
            scorer.predict_proba(frame), pipeline.predict_proba(frame), rtol=0, atol=1e-12
        )


def test_the_baseline_bends_its_numerics_and_one_hot_encodes_few_levels(
    customers: pd.DataFrame,
) -> None:
    pipeline, scorer, _ = _pipeline_and_scorer(customers)
    groups = {name: list(columns) for name, _, columns in pipeline[0].transformers_}
    assert "tenure" in groups["curved"] and "InternetService" in groups["one_hot"]
    curved = scorer.curves[scorer.numeric.index("tenure")]
    assert curved is not None and scorer.curves[scorer.numeric.index("SeniorCitizen")] is None


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_contributions_add_up_to_the_log_odds(customers: pd.DataFrame, encoding: str) -> None:
    pipeline, scorer, features = _pipeline_and_scorer(customers, encoding)
    sample = features.head(20)
    probability = pipeline.predict_proba(sample)[:, 1]
    log_odds = scorer.contributions(sample).sum(axis=1) + scorer.base_value
    np.testing.assert_allclose(log_odds, np.log(probability / (1 - probability)), atol=1e-9)


def test_the_baseline_candidate_is_the_compiled_scorer(customers: pd.DataFrame) -> None:
    table = validate(customers, "Churn", "customerID", min_rows=100)
    spec = infer_spec(table.features)
    candidate = fit_logistic_regression(spec, spec.prepare(table.features), table.target, seed=0)
    assert isinstance(candidate.estimator, LinearScorer)
    assert candidate.feature_importance(
        spec, spec.prepare(table.features)
    ).index.sort_values().tolist() == sorted(spec.names)
    assert candidate.churn_probability(spec.prepare(table.features.head(3))) == pytest.approx(
        candidate.estimator.predict_proba(spec.prepare(table.features.head(3)))[:, 1]
    )
