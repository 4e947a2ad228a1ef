"""The leaf a customer reaches in each of CatBoost's oblivious trees, worked out in numpy.

Asking CatBoost costs a `Pool` and a call, about 90 µs for one customer, more than the rest of
its SHAP lookup. Yet every split is a simple condition. A numeric split is `value > border`
in float32. A split on a category, one-hot or a target statistic (CTR), depends only on the
levels of the one to four features it combines, and on which side of a border some numerics
fall; CatBoost's CTR tables make that answer opaque but finite. So when the SHAP table is made
at training time, CatBoost answers every combination of known levels once, on probe rows, and
each split keeps a small table of its outcomes.

A customer with a level the spec does not know goes to CatBoost itself, as does a blank number
unless the model sends blanks to the False side, and every customer when the model has splits
this module does not read. `fit` checks its leaves against CatBoost's on real customers and
gives up on any difference.
"""

from __future__ import annotations

import itertools
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from catboost import CatBoostClassifier

from churn.columns import Columns, Table, object_array, rows_of
from churn.features import MISSING_CATEGORY, FeatureSpec

log = logging.getLogger(__name__)

# A split combining more level combinations than this is not tabulated (the model goes to
# CatBoost): the probes would cost more than they save.
MAX_COMBINATIONS = 4096

GATHER_BITS = np.uint64(0x0102040810204080)

# `fit` checks its leaves against CatBoost's on the first CHECK_ROWS real customers, CHECK_CHUNK
# at a time: `find` holds about 40 KB a customer for 600 trees (100,000 customers at once
# peaked at 4.5 GB and took 13 s), and a sample of real customers checks it as well.
CHECK_ROWS = 50_000
CHECK_CHUNK = 10_000

# A split's inputs: ("cat", flat feature index) or ("float", flat feature index, border).
Input = tuple[Any, ...]
Leaves = Callable[[Table], np.ndarray]


@dataclass(frozen=True)
class LeafFinder:
    category_codes: tuple[tuple[str, dict[str, int]], ...]  # level codes per categorical input
    float_names: tuple[str, ...]  # the numerics any split reads
    # Numeric comparisons: `float_inputs` of the CTRs' inputs, then one per numeric split.
    compared: np.ndarray  # row of float_names
    borders: np.ndarray
    float_inputs: int
    strides: np.ndarray  # (categorical codes, CTR numeric inputs) x combinations
    table_offset: np.ndarray  # per tabulated split: where its outcomes start in `outcomes`
    table_of: np.ndarray  # per tabulated split: its combination (row of `strides`)
    outcomes: np.ndarray  # each tabulated split's outcome per combination code
    # Per tree and depth (padded to 8 or 16): column of [numeric, tabulated splits, False].
    slot_source: np.ndarray
    trees: int
    # CatBoost sends a blank number to the False side of every split, as numpy's `>` does.
    nan_is_false: bool

    @classmethod
    def fit(
        cls, model: CatBoostClassifier, spec: FeatureSpec, reference: Table, catboost: Leaves
    ) -> LeafFinder | None:
        """A finder for `model`, or None when it cannot give CatBoost's leaves exactly.
        `catboost` gives CatBoost's own leaves of prepared features; `reference` are real
        customers to check against."""
        try:
            finder = _build(model, spec, catboost)
        except _UnsupportedError as reason:
            log.info("CatBoost leaves come from CatBoost itself: %s", reason)
            return None
        for start in range(0, min(len(reference), CHECK_ROWS), CHECK_CHUNK):
            rows = rows_of(reference, start, min(start + CHECK_CHUNK, CHECK_ROWS))
            found, exact = finder.find(rows)
            if not np.array_equal(found[exact], catboost(rows)[exact]):
                log.warning("CatBoost leaves come from CatBoost itself: the numpy leaves differed")
                return None
        return finder

    def find(self, features: Table) -> tuple[np.ndarray, np.ndarray]:
        """(rows x trees leaf indexes, whether each row's are exact); rows that are not
        exact have a level or a blank this finder cannot read and need CatBoost."""
        rows = len(features)
        codes = np.array(
            [
                [code_of.get(level, -1) for level in features[name].tolist()]
                for name, code_of in self.category_codes
            ],
            dtype=np.int64,
        ).reshape(len(self.category_codes), rows)
        exact = (codes >= 0).all(axis=0)
        numbers = np.empty((rows, len(self.float_names)), dtype=np.float32)
        for column, name in enumerate(self.float_names):
            numbers[:, column] = features[name]
        if not self.nan_is_false:
            exact &= ~np.isnan(numbers).any(axis=1)
        # np.take, not fancy indexing: several times faster on these small arrays.
        above = np.take(numbers, self.compared, axis=1) > self.borders
        inputs = np.concatenate([np.where(exact, codes, 0).T, above[:, : self.float_inputs]], 1)
        combination = np.take(inputs @ self.strides, self.table_of, axis=1) + self.table_offset
        outcomes = np.concatenate(
            [
                above[:, self.float_inputs :],
                np.take(self.outcomes, combination),
                np.zeros((rows, 1), dtype=bool),
            ],
            axis=1,
        )
        slots = np.take(outcomes, self.slot_source, axis=1)  # rows x trees x 8 or 16
        return _pack(slots).reshape(rows, self.trees).astype(np.int64), np.asarray(exact)


def _pack(slots: np.ndarray) -> np.ndarray:
    """Each run of 8 (or 16) outcomes as the integer whose bit i is outcome i."""
    if slots.shape[-1] == 8:
        # Eight 0/1 bytes read as one little-endian word; the product gathers their bits into
        # its top byte, 25 times faster than np.packbits on runs this short.
        return (slots.view(np.uint64)[..., 0] * GATHER_BITS) >> np.uint64(56)
    return np.packbits(slots, axis=-1, bitorder="little").view("<u2")


class _UnsupportedError(Exception):
    pass


@dataclass
class _Split:
    tree: int
    depth: int
    kind: str  # "float" or "table"
    float_feature: int = -1
    border: float = 0.0
    inputs: tuple[Input, ...] = ()


def _build(model: CatBoostClassifier, spec: FeatureSpec, catboost: Leaves) -> LeafFinder:
    description = _json(model)
    info = description["features_info"]
    names = spec.names
    float_flat = [f["flat_feature_index"] for f in info.get("float_features", [])]
    cat_flat = [f["flat_feature_index"] for f in info.get("categorical_features", [])]
    for feature in [*info.get("float_features", []), *info.get("categorical_features", [])]:
        if names[feature["flat_feature_index"]] != feature["feature_id"]:
            raise _UnsupportedError("its features are not in the spec's order")
    splits = _splits(description, float_flat, cat_flat)
    depth = max((s.depth + 1 for s in splits), default=1)
    trees = len(description["oblivious_trees"])

    categorical = sorted({i[1] for s in splits for i in s.inputs if i[0] == "cat"})
    float_inputs = sorted({i for s in splits for i in s.inputs if i[0] == "float"})
    numeric = sorted(
        {s.float_feature for s in splits if s.kind == "float"} | {i[1] for i in float_inputs}
    )
    levels = {flat: _levels(spec, names[flat]) for flat in categorical}
    combinations = sorted({s.inputs for s in splits if s.kind == "table"})
    input_position = {("cat", flat): n for n, flat in enumerate(categorical)}
    input_position.update({key: len(categorical) + n for n, key in enumerate(float_inputs)})
    strides = np.zeros((len(input_position), len(combinations)), dtype=np.int64)
    probes: list[dict[str, Any]] = []
    probe_start: list[int] = []
    for column, inputs in enumerate(combinations):
        radix = [len(levels[i[1]]) if i[0] == "cat" else 2 for i in inputs]
        if int(np.prod(radix)) > MAX_COMBINATIONS:
            raise _UnsupportedError(f"a split combines more than {MAX_COMBINATIONS} levels")
        stride = 1
        for put, size in zip(inputs, radix, strict=True):
            strides[input_position[put], column] = stride
            stride *= size
        probe_start.append(len(probes))
        probes.extend(_probes(spec, inputs, levels, radix))

    probe_leaves = catboost(_table_of(spec, probes))
    table_splits = [s for s in splits if s.kind == "table"]
    outcomes: list[np.ndarray] = []
    offsets = []
    for split in table_splits:
        column = combinations.index(split.inputs)
        count = int(np.prod([len(levels[i[1]]) if i[0] == "cat" else 2 for i in split.inputs]))
        rows = slice(probe_start[column], probe_start[column] + count)
        offsets.append(sum(len(o) for o in outcomes))
        outcomes.append((probe_leaves[rows, split.tree] >> split.depth) & 1)
    float_splits = [s for s in splits if s.kind == "float"]
    numeric_column = {flat: n for n, flat in enumerate(numeric)}
    zero = len(float_splits) + len(table_splits)
    slot_source = np.full((trees, 8 if depth <= 8 else 16), zero, dtype=np.int64)
    for n, split in enumerate([*float_splits, *table_splits]):
        slot_source[split.tree, split.depth] = n
    compared = [numeric_column[i[1]] for i in float_inputs]
    compared += [numeric_column[s.float_feature] for s in float_splits]
    return LeafFinder(
        category_codes=tuple(
            (names[flat], {level: code for code, level in enumerate(levels[flat])})
            for flat in categorical
        ),
        float_names=tuple(names[flat] for flat in numeric),
        compared=np.array(compared, dtype=np.int64),
        borders=np.array(
            [i[2] for i in float_inputs] + [s.border for s in float_splits], dtype=np.float32
        ),
        float_inputs=len(float_inputs),
        strides=strides,
        table_offset=np.array(offsets, dtype=np.int64),
        table_of=np.array([combinations.index(s.inputs) for s in table_splits], dtype=np.int64),
        outcomes=np.concatenate(outcomes).astype(bool) if outcomes else np.zeros(1, dtype=bool),
        slot_source=slot_source,
        trees=trees,
        nan_is_false=_nan_is_false(model, info),
    )


def _nan_is_false(model: CatBoostClassifier, info: dict[str, Any]) -> bool:
    treatments = {f.get("nan_value_treatment", "AsIs") for f in info.get("float_features", [])}
    return model.get_all_params().get("nan_mode", "Min") == "Min" and treatments <= {
        "AsIs",
        "AsFalse",
    }


def _json(model: CatBoostClassifier) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.json"
        model.save_model(str(path), format="json")
        return dict(json.loads(path.read_text()))


def _splits(
    description: dict[str, Any], float_flat: list[int], cat_flat: list[int]
) -> list[_Split]:
    if "oblivious_trees" not in description or description.get("non_symmetric_trees"):
        raise _UnsupportedError("its trees are not oblivious")
    ctr_at = _ctr_by_split_index(description)
    splits = []
    for tree, described in enumerate(description["oblivious_trees"]):
        for depth, split in enumerate(described["splits"] or []):
            kind = split["split_type"]
            if kind == "FloatFeature":
                flat = float_flat[split["float_feature_index"]]
                splits.append(_Split(tree, depth, "float", flat, float(split["border"])))
            elif kind == "OneHotFeature":
                inputs: tuple[Input, ...] = (("cat", cat_flat[split["cat_feature_index"]]),)
                splits.append(_Split(tree, depth, "table", inputs=inputs))
            elif kind == "OnlineCtr":
                ctr = ctr_at.get(split["split_index"])
                if ctr is None or float(split["border"]) not in ctr["borders"]:
                    raise _UnsupportedError("a CTR split could not be matched to its CTR")
                inputs = tuple(sorted({_input(e, float_flat, cat_flat) for e in ctr["elements"]}))
                splits.append(_Split(tree, depth, "table", inputs=inputs))
            else:
                raise _UnsupportedError(f"it has {kind} splits")
    return splits


def _ctr_by_split_index(description: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """CatBoost numbers the binary features: numeric borders, one-hot values, then CTR
    borders, each in the order `features_info` lists them."""
    info = description["features_info"]
    index = sum(len(f.get("borders", [])) for f in info.get("float_features", []))
    index += sum(len(f.get("values", [])) for f in info.get("categorical_features", []))
    by_index = {}
    for ctr in info.get("ctrs", []):
        for _ in ctr["borders"]:
            by_index[index] = ctr
            index += 1
    return by_index


def _input(element: dict[str, Any], float_flat: list[int], cat_flat: list[int]) -> Input:
    kind = element["combination_element"]
    if kind in ("cat_feature_value", "cat_feature_exact_value"):
        return ("cat", cat_flat[element["cat_feature_index"]])
    if kind == "float_feature":
        return ("float", float_flat[element["float_feature_index"]], float(element["border"]))
    raise _UnsupportedError(f"a CTR combines {kind}")


def _levels(spec: FeatureSpec, name: str) -> tuple[str, ...]:
    feature = next(f for f in spec.features if f.name == name)
    return tuple(dict.fromkeys([*feature.levels, MISSING_CATEGORY]))


def _probes(
    spec: FeatureSpec,
    inputs: tuple[Input, ...],
    levels: dict[int, tuple[str, ...]],
    radix: list[int],
) -> list[dict[str, Any]]:
    """One probe row per combination code (the first input varies fastest). A code whose
    numeric sides contradict each other is never reached, and its probe row is any row."""
    names = spec.names
    probes = []
    for digits in itertools.product(*(range(size) for size in reversed(radix))):
        row = dict(spec.example)
        sides: dict[int, list[tuple[float, bool]]] = {}
        for put, digit in zip(inputs, reversed(digits), strict=True):
            if put[0] == "cat":
                row[names[put[1]]] = levels[put[1]][digit]
            else:
                sides.setdefault(put[1], []).append((put[2], bool(digit)))
        for flat, wanted in sides.items():
            row[names[flat]] = _value_on_sides(wanted)
        probes.append(row)
    return probes


def _value_on_sides(wanted: list[tuple[float, bool]]) -> float:
    """A value above each border marked True and not above each marked False, in float32."""
    not_above = [border for border, above in wanted if not above]
    if not_above:
        return float(np.float32(min(not_above)))
    highest = max(border for border, _ in wanted)
    return float(np.nextafter(np.float32(highest), np.float32(np.inf)))


def _table_of(spec: FeatureSpec, rows: list[dict[str, Any]]) -> Columns:
    arrays = {}
    for feature in spec.features:
        values = [row.get(feature.name) for row in rows]
        if feature.kind == "numeric":
            arrays[feature.name] = np.array(
                [np.nan if v is None else v for v in values], dtype=np.float64
            )
        else:
            arrays[feature.name] = object_array(values)
    return Columns(arrays, len(rows))
