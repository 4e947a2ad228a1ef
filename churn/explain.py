"""Why a customer is at risk: each feature's additive contribution to the model's log-odds.

CatBoost gives exact SHAP values (its own `ShapValues`, looked up per leaf: catboost_shap.py);
the compiled logistic regression gives its exact linear contributions. Either way,
contributions plus the base value reproduce the model's raw score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from churn.catboost_shap import CatBoostShap
from churn.columns import Table
from churn.features import FeatureSpec
from churn.linear_scorer import LinearScorer

TOP_REASONS = 3


@dataclass(frozen=True)
class Reason:
    """One feature's pull on a customer's risk: its additive share of the model's log-odds."""

    feature: str
    value: Any
    contribution: float
    direction: Literal["raises risk", "lowers risk"]


Explainer = LinearScorer | CatBoostShap


def contributions(
    explainer: Explainer, spec: FeatureSpec, features: Table
) -> tuple[np.ndarray, np.ndarray]:
    """(rows x features contributions in `spec.names` order, base value per row)."""
    if isinstance(explainer, LinearScorer):
        matrix = explainer.contributions(features)
        position = {name: index for index, name in enumerate(explainer.feature_names)}
        order = [position[name] for name in spec.names]
        return matrix[:, order], np.full(len(features), explainer.base_value)
    return explainer.contributions(features)


def reasons_from(
    matrix: np.ndarray, spec: FeatureSpec, features: Table, top: int = TOP_REASONS
) -> list[list[Reason]]:
    """The `top` largest contributions of each row of `matrix` (from `contributions`)."""
    names = spec.names
    columns = [np.asarray(features[name]) for name in names]
    strongest = _strongest(matrix, top)
    return [
        [
            Reason(
                feature=names[i],
                value=_plain(columns[i][row]),
                contribution=float(matrix[row, i]),
                direction="raises risk" if matrix[row, i] > 0 else "lowers risk",
            )
            for i in strongest[row]
        ]
        for row in range(len(matrix))
    ]


def reason_texts(
    matrix: np.ndarray, spec: FeatureSpec, features: pd.DataFrame, top: int = TOP_REASONS
) -> np.ndarray:
    """Each row's top reasons as one text, "feature=value (+0.123); ...", as `reasons_from`
    would give them, built column-wise: a million-row file cannot afford objects per reason."""
    names = np.array(spec.names, dtype=object)
    values = np.stack([features[name].to_numpy(dtype=object) for name in spec.names])
    rows = np.arange(len(matrix))
    texts = np.full(len(matrix), "", dtype=object)
    for rank, feature in enumerate(_strongest(matrix, top).T):
        value = np.array([str(_plain(v)) for v in values[feature, rows]], dtype=object)
        contribution = np.array([f"{c:+.3f}" for c in matrix[rows, feature].tolist()], dtype=object)
        text = names[feature] + "=" + value + " (" + contribution + ")"
        texts = text if rank == 0 else texts + "; " + text
    return texts


def _strongest(matrix: np.ndarray, top: int) -> np.ndarray:
    return np.argsort(-np.abs(matrix), axis=1, kind="stable")[:, :top]


def _plain(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    return value.item() if isinstance(value, np.generic) else value
