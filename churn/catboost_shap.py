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
from functools import partial

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, Pool

from churn.catboost_leaves import LeafFinder
from churn.catboost_pool import catboost_pool, catboost_threads
from churn.columns import Table
from churn.features import FeatureSpec

# Below this many rows the leaves come from numpy (churn/catboost_leaves.py) when it can: for
# one customer 48 µs against CatBoost's 94; at 16 the two are even, and numpy is slower beyond.
NUMPY_LEAVES_BELOW = 16
# Customers whose leaves are summed at once; see CatBoostShap._sum.
SUM_CHUNK = 32
# Customers whose leaves are asked for at once when the table is filled.
LEAF_CHUNK = 20_000


@dataclass(frozen=True)
class CatBoostShap:
    model: CatBoostClassifier
    spec: FeatureSpec
    table: np.ndarray  # (all leaves of all trees) x features
    known: np.ndarray  # whether each leaf's row of `table` was filled
    first_leaf: np.ndarray  # index of each tree's first leaf in `table`
    base_value: float
    # None for a model it cannot read, and for tables made before it existed.
    leaf_finder: LeafFinder | None = None

    @classmethod
    def fit(
        cls, model: CatBoostClassifier, spec: FeatureSpec, reference: pd.DataFrame
    ) -> CatBoostShap:
        """Fill the table from the customers in `reference` (prepared features)."""
        leaf_counts = np.asarray(model.get_tree_leaf_counts(), dtype=np.int64)
        first_leaf = np.cumsum(leaf_counts) - leaf_counts
        table = np.zeros((int(leaf_counts.sum()), len(spec.names)))
        known = np.zeros(len(table), dtype=bool)
        base_value = float(_catboost_shap(model, _pool(spec, reference.head(1)))[0, -1])
        if model.get_all_params().get("grow_policy", "SymmetricTree") == "SymmetricTree":
            example = _first_customer_in_each_leaf(model, spec, reference, first_leaf, len(table))
            for tree in range(model.tree_count_):
                leaves = slice(first_leaf[tree], first_leaf[tree] + leaf_counts[tree])
                rows = first_leaf[tree] + np.flatnonzero(example[leaves] >= 0)
                one_tree = model.copy()
                one_tree.shrink(ntree_end=tree + 1, ntree_start=tree)
                examples = _pool(spec, reference.iloc[example[rows]])
                table[rows] = _catboost_shap(one_tree, examples)[:, :-1]
                known[rows] = True
        finder = LeafFinder.fit(model, spec, reference, partial(_catboost_leaves, model, spec))
        return cls(model, spec, table, known, first_leaf, base_value, finder)

    def contributions(self, features: Table) -> tuple[np.ndarray, np.ndarray]:
        """(rows x features SHAP values in `spec.names` order, base value per row)."""
        rows = self._leaves(features) + self.first_leaf
        matrix = self._sum(rows)
        unknown = ~self.known[rows].all(axis=1)
        if unknown.any():
            pool = _pool(self.spec, features)
            matrix[unknown] = _catboost_shap(self.model, pool.slice(np.flatnonzero(unknown)))[
                :, :-1
            ]
        return matrix, np.full(len(features), self.base_value)

    def _leaves(self, features: Table) -> np.ndarray:
        finder = self.leaf_finder
        if finder is not None and len(features) < NUMPY_LEAVES_BELOW:
            leaves, exact = finder.find(features)
            if exact.all():
                return leaves
        return _catboost_leaves(self.model, self.spec, features)

    def _sum(self, rows: np.ndarray) -> np.ndarray:
        """Each customer's sum of its leaves' rows of `table`: the rows gathered with `take`,
        then summed over the trees by one matrix product with a row of ones, which beats
        `.sum(axis=1)` on the gathered array by 3x for a batch of 8.

        For 500 trees of depth 6 and 20 features this takes 13, 62 and 238 µs for 1, 8 and 32
        customers, against 9, 58 and 196 µs for scipy's private CSR kernel and 27, 197 and
        830 µs for `table[rows].sum(axis=1)`. Larger batches go SUM_CHUNK customers at a time:
        2,000 at once gather 160 MB, and cost 23 µs a customer against 10.5 in chunks.
        """
        if len(rows) > SUM_CHUNK:
            chunks = [
                self._sum(rows[start : start + SUM_CHUNK])
                for start in range(0, len(rows), SUM_CHUNK)
            ]
            return np.concatenate(chunks)
        customers, trees = rows.shape
        gathered = np.take(self.table, rows.ravel(), axis=0)
        summed: np.ndarray = np.ones(trees) @ gathered.reshape(customers, trees, -1)
        return summed


def _first_customer_in_each_leaf(
    model: CatBoostClassifier,
    spec: FeatureSpec,
    reference: pd.DataFrame,
    first_leaf: np.ndarray,
    leaves: int,
) -> np.ndarray:
    """Per leaf of every tree (a row of the SHAP table), the first row of `reference` that
    reaches it, or -1. CatBoost's leaf indexes cost 4 bytes per customer and tree, 2.5 GB for a
    million customers and 600 trees, so they are asked for LEAF_CHUNK customers at a time."""
    none = len(reference)
    first = np.full(leaves, none, dtype=np.int64)
    for start in range(0, len(reference), LEAF_CHUNK):
        chunk = reference.iloc[start : start + LEAF_CHUNK]
        reached = np.asarray(model.calc_leaf_indexes(_pool(spec, chunk)), dtype=np.int64)
        reached += first_leaf
        rows = np.repeat(np.arange(start, start + len(chunk)), reached.shape[1])
        # 40 times faster than np.unique(..., return_index=True) on 30 million leaves.
        np.minimum.at(first, reached.ravel(), rows)
    return np.where(first == none, -1, first)


def _catboost_leaves(model: CatBoostClassifier, spec: FeatureSpec, features: Table) -> np.ndarray:
    pool = _pool(spec, features)
    return np.asarray(model.calc_leaf_indexes(pool, thread_count=catboost_threads(len(features))))


def _pool(spec: FeatureSpec, features: Table) -> Pool:
    return catboost_pool(spec, features)


def _catboost_shap(model: CatBoostClassifier, pool: Pool) -> np.ndarray:
    threads = catboost_threads(pool.num_row())
    return np.asarray(model.get_feature_importance(pool, type="ShapValues", thread_count=threads))
