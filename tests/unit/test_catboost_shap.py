"""The SHAP look-up table gives exactly CatBoost's own SHAP values, in or out of its leaves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from catboost import Pool

from churn import catboost_shap
from churn.catboost_shap import CatBoostShap
from churn.model import ChurnModel
from training.synth import synthesize


def _catboosts_own(model: ChurnModel, features: pd.DataFrame) -> np.ndarray:
    pool = Pool(features[model.spec.names], cat_features=model.spec.categorical)
    return np.asarray(model.estimator.get_feature_importance(pool, type="ShapValues"))


@pytest.mark.parametrize("rows", [1, 2, 7, 300], ids=str)
def test_looked_up_values_are_catboosts_own_for_new_customers(
    trained: dict[str, ChurnModel], rows: int
) -> None:
    model = trained["catboost"]
    features = model.spec.prepare(synthesize(rows, seed=99))
    matrix, base = model.insight.explainer.contributions(features)
    own = _catboosts_own(model, features)
    np.testing.assert_allclose(matrix, own[:, :-1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(base, own[:, -1], rtol=0, atol=1e-12)


def test_customers_in_leaves_the_table_lacks_get_catboosts_own_call(
    trained: dict[str, ChurnModel], customers: pd.DataFrame
) -> None:
    model = trained["catboost"]
    features = model.spec.prepare(customers.head(300))
    sparse = CatBoostShap.fit(model.estimator, model.spec, features.head(30))
    leaves = model.estimator.calc_leaf_indexes(
        Pool(features[model.spec.names], cat_features=model.spec.categorical)
    )
    in_table = sparse.known[leaves + sparse.first_leaf].all(axis=1)
    assert in_table[:30].all() and not in_table.all()
    matrix, _ = sparse.contributions(features)
    np.testing.assert_allclose(matrix, _catboosts_own(model, features)[:, :-1], rtol=0, atol=1e-9)


def test_a_table_filled_in_chunks_is_the_table_filled_at_once(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = trained["catboost"]
    features = model.spec.prepare(customers.head(300))
    at_once = CatBoostShap.fit(model.estimator, model.spec, features)
    monkeypatch.setattr(catboost_shap, "LEAF_CHUNK", 7)
    in_chunks = CatBoostShap.fit(model.estimator, model.spec, features)
    np.testing.assert_array_equal(in_chunks.known, at_once.known)
    np.testing.assert_array_equal(in_chunks.table, at_once.table)
    assert at_once.known.sum() > model.estimator.tree_count_  # more than one leaf per tree
