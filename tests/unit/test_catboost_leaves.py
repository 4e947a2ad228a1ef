"""The leaves numpy finds are CatBoost's own, and a model it cannot read goes to CatBoost."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
from catboost import CatBoostClassifier

from churn import catboost_leaves
from churn.catboost_leaves import LeafFinder
from churn.catboost_shap import CatBoostShap, _catboost_leaves
from churn.columns import Table
from churn.model import ChurnModel
from training.synth import synthesize


def _finder(model: ChurnModel) -> LeafFinder:
    explainer = model.insight.explainer
    assert isinstance(explainer, CatBoostShap) and explainer.leaf_finder is not None
    return explainer.leaf_finder


def test_leaves_are_catboosts_own_for_new_customers_blanks_included(
    trained: dict[str, ChurnModel],
) -> None:
    model = trained["catboost"]
    raw = synthesize(400, seed=7)
    raw.loc[raw.index[::5], "TotalCharges"] = ""
    raw.loc[raw.index[1::7], "tenure"] = np.nan
    features = model.spec.prepare(raw)
    leaves, exact = _finder(model).find(features)
    assert exact.all()
    own = _catboost_leaves(model.estimator, model.spec, features)
    np.testing.assert_array_equal(leaves, own)


def test_a_level_the_spec_does_not_know_is_left_to_catboost(
    trained: dict[str, ChurnModel],
) -> None:
    model = trained["catboost"]
    raw = synthesize(3, seed=8)
    category = model.spec.categorical[0]
    raw.loc[raw.index[1], category] = "a level never seen"
    _, exact = _finder(model).find(model.spec.prepare(raw))
    assert exact.tolist() == [True, False, True]
    matrix, _ = model.insight.explainer.contributions(model.spec.prepare(raw))
    one_by_one = [
        model.insight.explainer.contributions(model.spec.prepare(raw.iloc[[row]]))[0][0]
        for row in range(3)
    ]
    np.testing.assert_allclose(matrix, np.array(one_by_one), rtol=0, atol=1e-12)


def test_leaves_that_disagree_with_catboost_give_no_finder(
    trained: dict[str, ChurnModel], customers: pd.DataFrame
) -> None:
    model = trained["catboost"]
    estimator = model.estimator
    assert isinstance(estimator, CatBoostClassifier)
    features = model.spec.prepare(customers.head(200))

    def catboost_says_leaf_zero(table: Table) -> np.ndarray:
        return np.zeros((len(table), estimator.tree_count_), dtype=np.int64)

    assert LeafFinder.fit(estimator, model.spec, features, catboost_says_leaf_zero) is None
    catboost = partial(_catboost_leaves, estimator, model.spec)
    assert LeafFinder.fit(estimator, model.spec, features, catboost) is not None


def test_trees_that_are_not_oblivious_give_no_finder(trained: dict[str, ChurnModel]) -> None:
    model = trained["catboost"]
    features = model.spec.prepare(synthesize(300, seed=9))
    depthwise = CatBoostClassifier(
        iterations=5, depth=3, grow_policy="Depthwise", verbose=False, random_seed=1
    )
    depthwise.fit(
        features[model.spec.names],
        np.arange(len(features)) % 2,
        cat_features=model.spec.categorical,
    )
    catboost = partial(_catboost_leaves, depthwise, model.spec)
    assert LeafFinder.fit(depthwise, model.spec, features, catboost) is None


def test_the_check_reaches_customers_past_its_first_chunk(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = trained["catboost"]
    estimator = model.estimator
    assert isinstance(estimator, CatBoostClassifier)
    features = model.spec.prepare(customers.head(200))
    monkeypatch.setattr(catboost_leaves, "CHECK_CHUNK", 120)
    calls: list[int] = []

    def wrong_after_the_first_chunk(table: Table) -> np.ndarray:
        calls.append(len(table))  # the probes, then each chunk of customers
        leaves = _catboost_leaves(estimator, model.spec, table)
        return leaves if len(calls) < 3 else leaves + 1

    assert LeafFinder.fit(estimator, model.spec, features, wrong_after_the_first_chunk) is None
    assert calls[1:] == [120, 80]
