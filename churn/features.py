"""FeatureSpec: which columns a model reads, of which kind, and how raw values become features.

The same spec prepares rows in training, in the registered pyfunc model and behind HTTP, so a
record takes one path everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from churn.columns import Columns, Table, object_array
from churn.errors import UserError

FeatureKind = Literal["numeric", "categorical"]
MISSING_CATEGORY = "__missing__"
# A text column counts as numeric when nearly all of its non-blank cells parse as numbers,
# as with Telco's TotalCharges, whose blanks are new customers.
NUMERIC_TEXT_SHARE = 0.98
MAX_LEVELS_KEPT = 50
# From this many rows, text columns are read one distinct value at a time.
FACTORIZE_FROM = 10_000


@dataclass(frozen=True)
class Feature:
    name: str
    kind: FeatureKind
    levels: tuple[str, ...] = ()
    median: float | None = None


@dataclass(frozen=True)
class FeatureSpec:
    features: tuple[Feature, ...]
    id_column: str | None = None
    target: str | None = None
    example: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "numeric"]

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Raw rows → model features: numerics as float (blank → NaN), categoricals as text."""
        return self.prepare_columns(frame).to_frame(frame.index)

    def prepare_columns(self, table: Table) -> Columns:
        """`prepare` without building a DataFrame, for the small batches a server scores."""
        self.require(table.columns)
        prepared: dict[str, np.ndarray] = {}
        for feature in self.features:
            if feature.kind == "numeric":
                prepared[feature.name] = numeric_values(table[feature.name])
            else:
                prepared[feature.name] = category_levels(table[feature.name])
        return Columns(prepared, len(table))

    def require(self, columns: Collection[str]) -> None:
        """A UserError naming every feature that `columns` lack."""
        missing = [name for name in self.names if name not in columns]
        if missing:
            raise UserError(f"Missing feature columns: {', '.join(missing)}.")

    def prepare_values(self, values_of: Callable[[str], list[Any]], rows: int) -> Columns:
        """`prepare_columns` from each feature's raw values as a list, such as the fields of
        validated requests: no column of raw values is built first."""
        prepared: dict[str, np.ndarray] = {}
        for feature in self.features:
            values = values_of(feature.name)
            if feature.kind == "numeric":
                prepared[feature.name] = numeric_list(values)
            else:
                prepared[feature.name] = object_array([_level(value) for value in values])
        return Columns(prepared, rows)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        features = tuple(
            Feature(
                name=f["name"],
                kind=f["kind"],
                levels=tuple(f.get("levels", ())),
                median=f.get("median"),
            )
            for f in data["features"]
        )
        return cls(
            features=features,
            id_column=data.get("id_column"),
            target=data.get("target"),
            example=dict(data.get("example", {})),
        )


def infer_spec(
    features: pd.DataFrame,
    id_column: str | None = None,
    target: str | None = None,
    categorical: Iterable[str] = (),
    numeric: Iterable[str] = (),
) -> FeatureSpec:
    """Infer each column's kind from its values; `categorical`/`numeric` override the guess."""
    forced_categorical, forced_numeric = set(categorical), set(numeric)
    unknown = (forced_categorical | forced_numeric) - set(features.columns)
    if unknown:
        raise UserError(
            f"Cannot override the kind of {', '.join(map(repr, sorted(unknown)))}: "
            "not a feature column. "
            f"Feature columns: {', '.join(map(str, features.columns))}."
        )
    both = forced_categorical & forced_numeric
    if both:
        raise UserError(
            f"Columns named as both numeric and categorical: {', '.join(sorted(both))}."
        )

    inferred = []
    for name in features.columns:
        column = features[name]
        if name in forced_categorical:
            kind: FeatureKind = "categorical"
        elif name in forced_numeric:
            kind = "numeric"
            _require_mostly_numeric(column, str(name))
        else:
            kind = "numeric" if _looks_numeric(column) else "categorical"
        inferred.append(_describe(str(name), kind, column))
    spec = FeatureSpec(features=tuple(inferred), id_column=id_column, target=target)
    return FeatureSpec(
        features=spec.features, id_column=id_column, target=target, example=typical_record(spec)
    )


def typical_record(spec: FeatureSpec) -> dict[str, Any]:
    """A made-up customer for docs and examples: each numeric's median, each category's most
    common level. Never a row of the training table, which would publish a real customer."""
    return {
        feature.name: feature.median
        if feature.kind == "numeric"
        else (feature.levels[0] if feature.levels else MISSING_CATEGORY)
        for feature in spec.features
    }


def numeric_matrix(features: Table, names: Sequence[str]) -> np.ndarray:
    """Rows x `names` as floats, without the copy of `features[names]` (a third of the cost of
    scoring a small batch)."""
    if not names:
        return np.empty((len(features), 0))
    return np.column_stack([np.asarray(features[name], dtype=float) for name in names])


def to_numeric(column: pd.Series) -> pd.Series:
    return pd.Series(numeric_values(column), index=column.index)


def numeric_values(column: pd.Series | np.ndarray) -> np.ndarray:
    """Numbers as float64; blanks and text that is not a number become NaN."""
    # Object columns first: pandas' dtype checks cost more than the rest of a small batch.
    if column.dtype != object and (
        pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype)
    ):
        return np.asarray(column, dtype="float64")
    values = np.asarray(column, dtype=object)
    if all(value is None or isinstance(value, float | int) for value in values.tolist()):
        # Already numbers (JSON records): skip the text parsing below.
        return values.astype("float64")
    text = pd.Series(values, dtype=object).astype("string").str.strip()
    numbers = pd.to_numeric(text.mask(text == ""), errors="coerce")
    return numbers.to_numpy(dtype="float64", na_value=np.nan)


def numeric_list(values: list[Any]) -> np.ndarray:
    """`numeric_values` of a list: numbers and None (NaN) straight to float64."""
    if all(value is None or type(value) is float or type(value) is int for value in values):
        return np.array(values, dtype="float64")
    return numeric_values(object_array(values))


def to_category_text(column: pd.Series) -> pd.Series:
    return pd.Series(category_levels(column), index=column.index, dtype=object)


def category_levels(column: pd.Series | np.ndarray) -> np.ndarray:
    """Category levels as stripped text; blanks and missing values become one level of their own."""
    values = np.asarray(column, dtype=object)
    if len(values) >= FACTORIZE_FROM and pd.api.types.infer_dtype(values) == "string":
        # A training table: each distinct text once, not each of a million cells.
        codes, distinct = pd.factorize(values)
        levels = object_array([_level(value) for value in distinct] + [MISSING_CATEGORY])
        return levels[codes]  # code -1, a missing value, is the last level
    # A plain loop beats pandas' string methods by far on the small batches a server scores.
    return object_array([_level(value) for value in values])


def _level(value: object) -> str:
    if type(value) is str:
        return value.strip() or MISSING_CATEGORY
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING_CATEGORY
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1.0 read from a CSV with blanks is the level "1"
    return str(value).strip() or MISSING_CATEGORY


def _looks_numeric(column: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(column):
        return False
    if pd.api.types.is_numeric_dtype(column):
        return True
    return _numeric_share(column) >= NUMERIC_TEXT_SHARE


def _numeric_share(column: pd.Series) -> float:
    if pd.api.types.infer_dtype(column) == "string":
        # Each distinct text parsed once; text compares equal only to the same text.
        counts = column.value_counts()
        text = pd.Series(counts.index, dtype=object).str.strip()
        weights = counts.to_numpy()[(text != "").to_numpy()]
        text = text[text != ""]
        if text.empty:
            return 0.0
        numbers = pd.to_numeric(text, errors="coerce").notna().to_numpy()
        return float((weights * numbers).sum() / weights.sum())
    text = column.dropna().astype(str).str.strip()
    text = text[text != ""]
    if text.empty:
        return 0.0
    return float(pd.to_numeric(text, errors="coerce").notna().mean())


def _require_mostly_numeric(column: pd.Series, name: str) -> None:
    if pd.api.types.is_numeric_dtype(column) or _numeric_share(column) >= 0.5:
        return
    text = column.dropna().astype(str).str.strip()
    bad = text[pd.to_numeric(text, errors="coerce").isna() & (text != "")]
    raise UserError(
        f"Column {name!r} cannot be numeric: values such as "
        f"{', '.join(map(repr, bad.unique()[:5]))} are not numbers."
    )


def _describe(name: str, kind: FeatureKind, column: pd.Series) -> Feature:
    if kind == "numeric":
        values = to_numeric(column)
        median = float(values.median()) if values.notna().any() else 0.0
        return Feature(name=name, kind=kind, median=median)
    counts = to_category_text(column).value_counts()
    levels = tuple(str(level) for level in counts.index[:MAX_LEVELS_KEPT])
    return Feature(name=name, kind=kind, levels=levels)
