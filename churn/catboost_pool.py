"""CatBoost's input, built straight from prepared features.

A Pool made from a DataFrame costs about 1.4 ms for one customer, nearly all of it pandas; one
made from a 2-d object array of the same values costs about 70 µs, and it is faster at every
batch size measured up to 5,000 rows, with the same leaves and probabilities.
"""

from __future__ import annotations

import numpy as np
from catboost import Pool

from churn.columns import Table
from churn.features import FeatureSpec


def catboost_pool(spec: FeatureSpec, features: Table) -> Pool:
    """`features` in `spec.names` order, categorical columns marked by position."""
    matrix = np.empty((len(features), len(spec.names)), dtype=object)
    for position, name in enumerate(spec.names):
        matrix[:, position] = np.asarray(features[name])
    categorical = set(spec.categorical)
    positions = [position for position, name in enumerate(spec.names) if name in categorical]
    return Pool(matrix, cat_features=positions)
