"""CatBoost's input, built straight from prepared features, and the threads CatBoost works on.

A Pool made from a DataFrame costs about 1.4 ms for one customer, nearly all of it pandas; one
made from a 2-d object array of the same values costs about 70 µs, and it is faster at every
batch size measured up to 5,000 rows, with the same leaves and probabilities.
"""

from __future__ import annotations

import numpy as np
from catboost import CatBoostClassifier, Pool

from churn.columns import Table
from churn.features import FeatureSpec

# Below this many rows CatBoost works on the calling thread. Its default, every core, wakes
# worker threads that spin after the call: a Pool of 7 customers cost 56-65 µs of CPU on one
# thread, against 165-185 µs of CPU in 83-96 µs of wall time on its default, and a served
# worker's spinning thread took 14% of its CPU.
SMALL_BATCH = 256


def catboost_threads(rows: int) -> int:
    return 1 if rows < SMALL_BATCH else -1


def catboost_pool(spec: FeatureSpec, features: Table) -> Pool:
    """`features` in `spec.names` order, categorical columns marked by position."""
    matrix = np.empty((len(features), len(spec.names)), dtype=object)
    for position, name in enumerate(spec.names):
        matrix[:, position] = np.asarray(features[name])
    categorical = set(spec.categorical)
    positions = [position for position, name in enumerate(spec.names) if name in categorical]
    return Pool(matrix, cat_features=positions, thread_count=catboost_threads(len(features)))


def catboost_probability(
    model: CatBoostClassifier, spec: FeatureSpec, features: Table
) -> np.ndarray:
    """The churn probability of each row of `features`."""
    pool = catboost_pool(spec, features)
    probabilities = model.predict_proba(pool, thread_count=catboost_threads(len(features)))
    return np.asarray(probabilities)[:, 1]
