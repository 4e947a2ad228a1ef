"""CatBoost's input built from prepared columns scores exactly as a DataFrame does."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.catboost_pool import SMALL_BATCH, catboost_pool, catboost_probability
from churn.model import ChurnModel
from training.synth import synthesize


def test_the_object_array_pool_scores_as_the_dataframe_does(
    trained: dict[str, ChurnModel],
) -> None:
    model = trained["catboost"]
    customers = synthesize(200, seed=7)
    customers.loc[::9, "TotalCharges"] = np.nan
    customers.loc[::13, "Contract"] = "a level never seen in training"
    frame = model.spec.prepare(customers)
    columns = model.spec.prepare_columns(customers)
    expected = model.estimator.predict_proba(frame[model.spec.names])
    for features in (frame, columns):
        pool = catboost_pool(model.spec, features)
        np.testing.assert_array_equal(model.estimator.predict_proba(pool), expected)
        np.testing.assert_array_equal(
            model.estimator.calc_leaf_indexes(pool),
            model.estimator.calc_leaf_indexes(frame[model.spec.names]),
        )


def test_one_customer_scores_as_in_a_batch(trained: dict[str, ChurnModel]) -> None:
    model = trained["catboost"]
    customers = synthesize(50, seed=8)
    batch = model.churn_probability(customers)
    one_by_one = [model.churn_probability(pd.DataFrame(customers.iloc[[row]])) for row in range(50)]
    np.testing.assert_allclose(np.concatenate(one_by_one), batch, rtol=0, atol=1e-12)


def test_small_batches_on_one_thread_score_as_a_large_batch_on_every_core(
    trained: dict[str, ChurnModel],
) -> None:
    model = trained["catboost"]
    features = model.spec.prepare_columns(synthesize(SMALL_BATCH + 44, seed=9))
    large = catboost_probability(model.estimator, model.spec, features)
    frame = features.to_frame()
    small = [
        catboost_probability(model.estimator, model.spec, frame.iloc[start : start + 100])
        for start in range(0, len(frame), 100)
    ]
    np.testing.assert_array_equal(np.concatenate(small), large)
