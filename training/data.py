"""Read a customer table from CSV, Parquet or SQL and check it is fit to train on."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet as pq

from churn.errors import UserError
from scoring.tables import is_parquet

log = logging.getLogger(__name__)

POSITIVE_LABELS = frozenset({"yes", "true", "1", "y", "1.0", "churn", "churned"})
NEGATIVE_LABELS = frozenset({"no", "false", "0", "n", "0.0", "stay", "stayed"})


@dataclass(frozen=True)
class Source:
    """Where a table lives: a file path, or a SQLAlchemy URL with a table name or a query."""

    location: str
    table: str | None = None
    query: str | None = None

    @property
    def is_sql(self) -> bool:
        return "://" in self.location

    def require_file(self) -> None:
        """A UserError when a file source is missing or empty; a SQL source is checked when read."""
        if self.is_sql:
            return
        path = Path(self.location)
        if not path.exists():
            raise UserError(f"Data file {path} does not exist.")
        if path.is_dir() or path.stat().st_size == 0:
            raise UserError(f"Data file {path} is empty.")

    def describe(self) -> str:
        if not self.is_sql:
            return self.location
        url = self.location.split("@")[-1]  # keep passwords out of logs
        return f"{url} ({self.query or self.table})"


@dataclass(frozen=True)
class LabelledTable:
    """A validated table: raw feature columns, the 0/1 target and the optional ids."""

    features: pd.DataFrame
    target: np.ndarray
    ids: pd.Series | None
    label_mapping: dict[str, int]


def read_table(source: Source) -> pd.DataFrame:
    source.require_file()
    table = _read_sql(source) if source.is_sql else _read_file(Path(source.location))
    if table.empty or len(table.columns) == 0:
        raise UserError(f"{source.describe()} has no rows.")
    return table


def require_columns(source: Source, target: str, id_column: str | None) -> None:
    """A UserError when a file's header lacks the target or id column, found before the whole
    table is read; a SQL source is checked once read (`validate`)."""
    source.require_file()
    if source.is_sql:
        return
    _require_target_and_id(
        _read_file(Path(source.location), header_only=True).columns, target, id_column
    )


def _read_file(path: Path, header_only: bool = False) -> pd.DataFrame:
    try:
        if is_parquet(path):
            return _read_parquet(path, header_only)
        rows = 0 if header_only else None
        return pd.read_csv(path, skipinitialspace=False, low_memory=False, nrows=rows)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise UserError(
            f"Could not parse {path}: {_first_line(exc)}. "
            "Expected a CSV file with a header row, or a Parquet file."
        ) from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt Parquet
        raise UserError(f"Could not parse {path}: {_first_line(exc)}") from exc


def _read_parquet(path: Path, header_only: bool = False) -> pd.DataFrame:
    """Column by column, so Arrow holds one decoded column at a time rather than the whole file:
    for 5,000,000 customers the read peaks at 1.9 GiB rather than 3.6 for a 0.8 GiB frame.
    The result is what `pd.read_parquet` gives with its index dropped."""
    parquet = pq.ParquetFile(path)
    # A stored index is a column named here; a RangeIndex is a dict of its bounds instead.
    index = (parquet.schema_arrow.pandas_metadata or {}).get("index_columns", [])
    index_columns = {name for name in index if isinstance(name, str)}
    names = [name for name in parquet.schema_arrow.names if name not in index_columns]
    if header_only:
        return pd.DataFrame(columns=names)
    columns = {}
    for name in names:
        columns[name] = parquet.read(columns=[name]).to_pandas()[name].reset_index(drop=True)
        # Arrow's allocator would keep each decoded column's buffers where nothing else can
        # reuse them; hand them back to the system.
        pyarrow.default_memory_pool().release_unused()
    return pd.DataFrame(columns, copy=False)


def _read_sql(source: Source) -> pd.DataFrame:
    import sqlalchemy

    if (source.table is None) == (source.query is None):
        raise UserError("A SQL source needs exactly one of --table or --query.")
    try:
        engine = sqlalchemy.create_engine(source.location)
    except (sqlalchemy.exc.ArgumentError, ImportError) as exc:
        raise UserError(f"Not a usable SQLAlchemy URL: {source.describe()}: {exc}") from exc
    try:
        with engine.connect() as connection:
            if source.table is not None:
                return pd.read_sql_table(source.table, connection)
            return pd.read_sql_query(sqlalchemy.text(source.query or ""), connection)
    except ValueError as exc:
        raise UserError(f"Table {source.table!r} not found at {source.describe()}.") from exc
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise UserError(f"Could not read {source.describe()}: {_first_line(exc)}") from exc
    finally:
        engine.dispose()


def validate(
    table: pd.DataFrame,
    target: str,
    id_column: str | None,
    min_rows: int,
) -> LabelledTable:
    """Check the table can train a binary churn model; every problem becomes a UserError."""
    _require_target_and_id(table.columns, target, id_column)
    has_label = table[target].notna() & (table[target].astype(str).str.strip() != "")
    # Each copy of a table of millions of customers costs GiBs: copy only to drop rows.
    labelled = table if has_label.all() else table[has_label]
    dropped = len(table) - len(labelled)
    if dropped:
        log.warning("Dropped %d rows with a blank %r label.", dropped, target)
    if len(labelled) < min_rows:
        raise UserError(
            f"Too few rows to train: {len(labelled)} labelled rows, at least {min_rows} needed."
        )
    y, mapping = encode_labels(labelled[target], target)
    ids = None
    if id_column is not None:
        ids = labelled[id_column]
        _require_unique(ids, id_column)
    for label, count in zip(("non-churners", "churners"), np.bincount(y, minlength=2), strict=True):
        if count < 10:
            raise UserError(
                f"Too few {label} to train: {count} in column {target!r}, at least 10 needed."
            )
    features = pd.DataFrame(
        {name: labelled[name] for name in labelled.columns if name not in (target, id_column)},
        copy=False,
    )
    if features.shape[1] == 0:
        raise UserError(f"No feature columns left besides {target!r} and {id_column!r}.")
    features.index = pd.RangeIndex(len(features))
    return LabelledTable(
        features=features,
        target=y,
        ids=None if ids is None else ids.reset_index(drop=True),
        label_mapping=mapping,
    )


def encode_labels(labels: pd.Series, target: str) -> tuple[np.ndarray, dict[str, int]]:
    """Map Yes/No, True/False, 1/0, Y/N (any case) to 1/0; anything else is a UserError."""
    text = labels.astype(str).str.strip()
    lowered = text.str.lower()
    positive = lowered.isin(POSITIVE_LABELS)
    negative = lowered.isin(NEGATIVE_LABELS)
    unknown = ~(positive | negative)
    if unknown.any():
        counts = text[unknown].value_counts().head(10)
        shown = ", ".join(f"{value!r} ({count})" for value, count in counts.items())
        raise UserError(
            f"Target column {target!r} is not binary: {int(unknown.sum())} rows have values "
            f"that are not yes/no, true/false, 1/0 or y/n: {shown}."
        )
    present = sorted(set(lowered))
    if not (positive.any() and negative.any()):
        raise UserError(
            f"Target column {target!r} has only one class ({', '.join(present)}); "
            "training needs both churners and non-churners."
        )
    mapping = {value: int(value.lower() in POSITIVE_LABELS) for value in sorted(set(text))}
    return positive.to_numpy(dtype=np.int64), mapping


def _require_target_and_id(columns: pd.Index, target: str, id_column: str | None) -> None:
    _require_column(columns, target, "target")
    if id_column is not None:
        _require_column(columns, id_column, "id")


def _require_column(columns: pd.Index, column: str, role: str) -> None:
    if column not in columns:
        raise UserError(
            f"The {role} column {column!r} is not in the table. "
            f"Columns present: {', '.join(map(str, columns))}."
        )


def _require_unique(ids: pd.Series, id_column: str) -> None:
    duplicated = ids[ids.duplicated(keep=False)]
    if duplicated.empty:
        return
    examples = ", ".join(map(repr, duplicated.drop_duplicates().head(5)))
    raise UserError(
        f"The id column {id_column!r} has {duplicated.nunique()} duplicated ids "
        f"({len(duplicated)} rows), for example {examples}."
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
