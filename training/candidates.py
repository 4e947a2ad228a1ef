"""The candidate estimators. Each takes prepared features and returns churn probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier
from category_encoders import CatBoostEncoder, OneHotEncoder
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler

from churn.calibration import Calibration, calibrated
from churn.features import FeatureSpec
from churn.linear_scorer import LinearScorer
from churn.model import ChurnEstimator

CandidateName = Literal["logistic_regression", "catboost"]
EARLY_STOPPING_ROUNDS = 100
ONE_HOT_MAX_SIZE = 4
# The baseline is fitted on at most this many customers of the training split (stratified).
BASELINE_ROWS = 200_000
# The baseline one-hot encodes a category of at most this many levels, and target-encodes
# the rest; it fits a spline to a numeric of at least CURVE_MIN_VALUES distinct values.
BASELINE_ONE_HOT_MAX_LEVELS = 16
CURVE_MIN_VALUES = 10
SPLINE_KNOTS = 5


@dataclass(frozen=True)
class FittedCandidate:
    name: CandidateName
    estimator: ChurnEstimator
    params: dict[str, Any]
    # Chosen on the validation split (training/calibrate.py); None: served as estimated.
    calibration: Calibration | None = None

    def churn_probability(self, features: pd.DataFrame) -> np.ndarray:
        """The probability the registered model will serve: calibrated, if it is."""
        return calibrated(self.calibration, self.raw_probability(features))

    def raw_probability(self, features: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(features))[:, 1]

    def feature_importance(self, spec: FeatureSpec, features: pd.DataFrame) -> pd.Series:
        """CatBoost's own importance; for the baseline, how far each feature moves the
        log-odds on average over `features`."""
        if isinstance(self.estimator, LinearScorer):
            return self.estimator.mean_absolute_contributions(features).sort_values()
        if isinstance(self.estimator, CatBoostClassifier):
            return pd.Series(
                self.estimator.get_feature_importance(), index=spec.names
            ).sort_values()
        raise TypeError(f"No feature importance for {type(self.estimator).__name__}")


def fit_logistic_regression(
    spec: FeatureSpec,
    train: pd.DataFrame,
    y_train: np.ndarray,
    seed: int,
    tuned: dict[str, Any] | None = None,
) -> FittedCandidate:
    """`tuned` overrides C (the inverse regularisation), the encoder's smoothing `a` and the
    splines' `knots`.

    A model of a few dozen weights learns nothing more from millions of rows than from
    BASELINE_ROWS of them, so a larger split is sampled first."""
    if len(train) > BASELINE_ROWS:
        train, _, y_train, _ = train_test_split(
            train, y_train, train_size=BASELINE_ROWS, stratify=y_train, random_state=seed
        )
    params: dict[str, Any] = {"C": 1.0, "a": 1.0, "knots": SPLINE_KNOTS} | (tuned or {})
    params |= {"max_iter": 2000}
    pipeline = Pipeline(
        [
            ("encode", baseline_encoding(spec, train, params["a"], params["knots"], seed)),
            ("model", LogisticRegression(C=params["C"], max_iter=params["max_iter"])),
        ]
    )
    pipeline.fit(train, y_train)
    scorer = LinearScorer.from_pipeline(pipeline, train)
    return FittedCandidate("logistic_regression", scorer, params)


def baseline_encoding(
    spec: FeatureSpec, train: pd.DataFrame, smoothing: float, knots: int, seed: int
) -> ColumnTransformer:
    """Features for a model that is linear in them: a category of few levels one-hot, of many
    its smoothed churn rate (CatBoostEncoder, `smoothing` its prior's weight), and a numeric
    with enough distinct values a cubic spline, `knots` at its quantiles, so tenure or charges
    can bend the log-odds. Over 20 splits of the IBM Telco table the splines and one-hot
    encoding raised the baseline's mean test ROC-AUC from 0.8441 to 0.8505 (docs/insights.md)."""
    levels = {name: train[name].nunique() for name in spec.categorical}
    few = [name for name in spec.categorical if levels[name] <= BASELINE_ONE_HOT_MAX_LEVELS]
    many = [name for name in spec.categorical if name not in few]
    curved = [name for name in spec.numeric if train[name].nunique() >= CURVE_MIN_VALUES]
    straight = [name for name in spec.numeric if name not in curved]
    groups = [
        ("one_hot", OneHotEncoder(handle_unknown="value", handle_missing="value"), few),
        ("target_mean", CatBoostEncoder(random_state=seed, a=smoothing), many),
        (
            "numeric",
            Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
            straight,
        ),
        (
            "curved",
            Pipeline(
                [
                    ("impute", SimpleImputer(strategy="median")),
                    ("spline", SplineTransformer(n_knots=knots, knots="quantile")),
                    ("scale", StandardScaler()),
                ]
            ),
            curved,
        ),
    ]
    return ColumnTransformer([group for group in groups if group[2]])


def fit_catboost(
    spec: FeatureSpec,
    train: pd.DataFrame,
    y_train: np.ndarray,
    valid: pd.DataFrame,
    y_valid: np.ndarray,
    seed: int,
    iterations: int,
    threads: int,
    tuned: dict[str, Any] | None = None,
) -> FittedCandidate:
    """`tuned` overrides the defaults below (training/search.py searches them).

    A category of up to four levels is one-hot encoded rather than given target statistics:
    on 100,000 synthetic Telco customers that fitted in 3.4 s instead of 52 s with the same
    test ROC-AUC (0.8503 and 0.8502) and log-loss (0.4001 and 0.4003).

    The fit takes the frame as it is, not a pool quantized beforehand: on 1,000,000 synthetic
    customers the fit added 0.21 GiB to what was resident from the frame and 0.18 GiB from a
    quantized pool, in 29 s and 34 s, at the same test ROC-AUC (0.8537). Training's peak is
    elsewhere (docs/performance.md#training-at-scale)."""
    params: dict[str, Any] = {
        "learning_rate": 0.03,
        "depth": 6,
        "l2_leaf_reg": 5.0,
        "one_hot_max_size": ONE_HOT_MAX_SIZE,
    } | (tuned or {})
    params |= {
        "iterations": iterations,
        "loss_function": "Logloss",
        "random_seed": seed,
        "early_stopping_rounds": EARLY_STOPPING_ROUNDS,
    }
    model = CatBoostClassifier(
        **params,
        cat_features=spec.categorical,
        thread_count=threads,
        verbose=False,
        allow_writing_files=False,
    )
    model.fit(train, y_train, eval_set=(valid, y_valid), use_best_model=True)
    params["best_iteration"] = model.get_best_iteration()
    return FittedCandidate("catboost", model, params)
