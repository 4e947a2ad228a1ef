"""The logistic-regression baseline, compiled to lookups and one dot product.

The fitted sklearn pipeline (CatBoostEncoder, median imputer, scaler, logistic regression) spends
most of a small batch in pandas bookkeeping. At inference every step is a fixed map: each
category level encodes to a constant, each numeric is shifted and scaled. Baking those into
arrays scores the same probabilities, about 20x faster on the batches the service sees, and
gives each feature's exact additive contribution to the log-odds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from churn.columns import Table
from churn.features import numeric_matrix

UNSEEN_LEVEL = "\x00unseen level\x00"


@dataclass(frozen=True)
class LinearScorer:
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    level_values: tuple[dict[str, float], ...]
    unseen_values: np.ndarray
    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    categorical_weights: np.ndarray
    numeric_weights: np.ndarray
    intercept: float
    categorical_means: np.ndarray

    @classmethod
    def from_pipeline(
        cls, pipeline: Pipeline, training: pd.DataFrame | None = None
    ) -> LinearScorer:
        """Compile a fitted pipeline; `training` centres the contributions on its averages."""
        columns = pipeline.named_steps["encode"]
        encoder = columns.named_transformers_["categorical"]
        numeric_steps = columns.named_transformers_["numeric"]
        categorical = tuple(str(c) for c in columns.transformers_[0][2])
        numeric = tuple(str(c) for c in columns.transformers_[1][2])
        level_values, unseen = _encoded_levels(encoder, categorical)
        weights = pipeline.named_steps["model"].coef_[0]
        means = np.zeros(len(categorical))
        if training is not None and categorical:
            means = (
                encoder.transform(training[list(categorical)]).to_numpy(dtype=float).mean(axis=0)
            )
        return cls(
            categorical=categorical,
            numeric=numeric,
            level_values=level_values,
            unseen_values=unseen,
            medians=numeric_steps.named_steps["impute"].statistics_.astype(float),
            means=numeric_steps.named_steps["scale"].mean_.astype(float),
            scales=numeric_steps.named_steps["scale"].scale_.astype(float),
            categorical_weights=weights[: len(categorical)].astype(float),
            numeric_weights=weights[len(categorical) :].astype(float),
            intercept=float(pipeline.named_steps["model"].intercept_[0]),
            categorical_means=means,
        )

    @property
    def feature_names(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    @property
    def base_value(self) -> float:
        """The log-odds of an average customer: contributions are measured from here."""
        return float(self.intercept + self.categorical_weights @ self.categorical_means)

    def contributions(self, features: Table) -> np.ndarray:
        """Each feature's exact share of the log-odds; add `base_value` for the raw score.

        Numerics are standardised on the training data, so they are centred already;
        categoricals are centred on their average training encoding.
        """
        # All lookups first and one conversion: a write per column cost more on small batches.
        encoded = (
            np.array(
                [
                    [values.get(level, unseen) for level in np.asarray(features[name]).tolist()]
                    for name, values, unseen in zip(
                        self.categorical,
                        self.level_values,
                        self.unseen_values.tolist(),
                        strict=True,
                    )
                ],
                dtype=float,
            )
            .reshape(len(self.categorical), len(features))
            .T
        )
        numbers = numeric_matrix(features, self.numeric)
        numbers = np.where(np.isnan(numbers), self.medians, numbers)
        scaled = (numbers - self.means) / self.scales
        centred = encoded - self.categorical_means
        return np.hstack([centred * self.categorical_weights, scaled * self.numeric_weights])

    def log_odds(self, features: Table) -> np.ndarray:
        return np.asarray(self.contributions(features).sum(axis=1) + self.base_value)

    def predict_proba(self, features: Table) -> np.ndarray:
        churn = 1.0 / (1.0 + np.exp(-self.log_odds(features)))
        return np.column_stack([1.0 - churn, churn])


def _encoded_levels(
    encoder: object, categorical: tuple[str, ...]
) -> tuple[tuple[dict[str, float], ...], np.ndarray]:
    """Ask the fitted encoder itself what every known level, and an unseen one, encodes to."""
    levels = [[*map(str, encoder.mapping[name].index), UNSEEN_LEVEL] for name in categorical]  # type: ignore[attr-defined]
    rows = max(len(column) for column in levels)
    probe = pd.DataFrame(
        {
            name: column + [column[0]] * (rows - len(column))
            for name, column in zip(categorical, levels, strict=True)
        },
        dtype=object,
    )
    encoded = encoder.transform(probe).to_numpy(dtype=float)  # type: ignore[attr-defined]
    values = tuple(
        {level: float(encoded[row, index]) for row, level in enumerate(column[:-1])}
        for index, column in enumerate(levels)
    )
    unseen = np.array([encoded[len(column) - 1, index] for index, column in enumerate(levels)])
    return values, unseen
