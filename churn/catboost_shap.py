"""CatBoost's own SHAP values, worked out once per leaf instead of once per call.

In an oblivious tree every level splits on one condition, so the leaf a customer lands in
records every split outcome, and the tree's SHAP values for that customer depend on nothing
else. CatBoost rebuilds its tree statistics on every `ShapValues` call, which costs
milliseconds even for one customer. So at training time we ask CatBoost, one tree at a
time, for the SHAP values of one customer in each leaf that any known customer reaches, and keep
them. Explaining is then a leaf lookup and a sum, with the same numbers. A customer who lands in
a leaf nobody reached gets CatBoost's own call.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, Pool

from churn.catboost_pool import catboost_pool
from churn.columns import Table
from churn.features import FeatureSpec

# Starting threads costs more than it saves for a few customers.
SMALL_BATCH = 256
# From this many customers on, looking up tree by tree beats one lookup of every tree and
# feature per customer; below it, the one lookup is faster.
TREE_BY_TREE_FROM = 500


@dataclass(frozen=True)
class CatBoostShap:
    model: CatBoostClassifier
    spec: FeatureSpec
    table: np.ndarray  # (all leaves of all trees) x features
    known: np.ndarray  # whether each leaf's row of `table` was filled
    first_leaf: np.ndarray  # index of each tree's first leaf in `table`
    base_value: float

    @classmethod
    def fit(
        cls, model: CatBoostClassifier, spec: FeatureSpec, reference: pd.DataFrame
    ) -> CatBoostShap:
        """Fill the table from the customers in `reference` (prepared features)."""
        leaf_counts = np.asarray(model.get_tree_leaf_counts(), dtype=np.int64)
        first_leaf = np.cumsum(leaf_counts) - leaf_counts
        table = np.zeros((int(leaf_counts.sum()), len(spec.names)))
        known = np.zeros(len(table), dtype=bool)
        pool = _pool(spec, reference)
        base_value = float(_catboost_shap(model, _pool(spec, reference.head(1)))[0, -1])
        if model.get_all_params().get("grow_policy", "SymmetricTree") == "SymmetricTree":
            leaves = model.calc_leaf_indexes(pool)
            for tree in range(model.tree_count_):
                reached, example_row = np.unique(leaves[:, tree], return_index=True)
                one_tree = model.copy()
                one_tree.shrink(ntree_end=tree + 1, ntree_start=tree)
                examples = _pool(spec, reference.iloc[example_row])
                rows = first_leaf[tree] + reached
                table[rows] = _catboost_shap(one_tree, examples)[:, :-1]
                known[rows] = True
        return cls(model, spec, table, known, first_leaf, base_value)

    def contributions(self, features: Table) -> tuple[np.ndarray, np.ndarray]:
        """(rows x features SHAP values in `spec.names` order, base value per row)."""
        pool = _pool(self.spec, features)
        leaves = self.model.calc_leaf_indexes(pool, thread_count=_threads(len(features)))
        rows = leaves + self.first_leaf
        if len(features) < TREE_BY_TREE_FROM:
            matrix = self.table[rows].sum(axis=1)
        else:
            matrix = self._tree_by_tree(leaves)
        unknown = ~self.known[rows].all(axis=1)
        if unknown.any():
            matrix[unknown] = _catboost_shap(self.model, pool.slice(np.flatnonzero(unknown)))[
                :, :-1
            ]
        return matrix, np.full(len(features), self.base_value)

    def _tree_by_tree(self, leaves: np.ndarray) -> np.ndarray:
        leaves_by_tree = np.ascontiguousarray(leaves.T)
        by_feature = np.zeros((self.table.shape[1], len(leaves)))
        for tree, feature, values in self._tree_columns:
            by_feature[feature] += values[leaves_by_tree[tree]]
        return by_feature.T

    @cached_property
    def _tree_columns(self) -> list[tuple[int, int, np.ndarray]]:
        """(tree, feature, SHAP value of each of the tree's leaves) for every feature a tree
        uses: a depth-6 tree touches a handful of the features, so a big batch costs a few
        lookups per tree instead of one per tree and feature."""
        ends = np.append(self.first_leaf[1:], len(self.table))
        columns = []
        for tree, (start, end) in enumerate(zip(self.first_leaf, ends, strict=True)):
            block = self.table[start:end]
            for feature in np.flatnonzero(np.abs(block).sum(axis=0) > 0):
                columns.append((tree, int(feature), np.ascontiguousarray(block[:, feature])))
        return columns


def _pool(spec: FeatureSpec, features: Table) -> Pool:
    return catboost_pool(spec, features)


def _catboost_shap(model: CatBoostClassifier, pool: Pool) -> np.ndarray:
    threads = _threads(pool.num_row())
    return np.asarray(model.get_feature_importance(pool, type="ShapValues", thread_count=threads))


def _threads(rows: int) -> int:
    return 1 if rows < SMALL_BATCH else -1
