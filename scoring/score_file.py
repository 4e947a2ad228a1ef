"""Score a whole customer file in chunks: every input column plus the decisions, in input order.

Memory stays flat at any file size. A bad row never aborts the file: it is written with its
`error` and counted in the summary, and every good row around it is scored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churn.errors import UserError
from churn.experiment import Experiment, hold_back
from churn.explain import reason_texts
from churn.features import to_numeric
from churn.model import ChurnModel
from scoring.summary import Summary
from scoring.tables import is_parquet

log = logging.getLogger(__name__)

CHUNK_ROWS = 50_000
PREDICTION_COLUMNS = (
    "churn_probability", "churn", "risk_tier", "decile", "segment_id", "segment", "action",
    "expected_value", "customer_value", "experiment", "treatment", "held_back_action",
    "top_reasons", "error",
)  # fmt: skip


@dataclass(frozen=True)
class ScoredFile:
    out: Path
    summary: Summary


def score_file(
    model: ChurnModel,
    data: Path,
    out: Path,
    chunk_rows: int = CHUNK_ROWS,
    with_reasons: bool = True,
    on_chunk: Callable[[pd.DataFrame], None] | None = None,
    experiment: Experiment | None = None,
) -> ScoredFile:
    """Score `data` into `out`; `on_chunk` sees each scored chunk after it is written."""
    if not data.exists():
        raise UserError(f"Data file {data} does not exist.")
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = Summary(source=str(data))
    writer = _Writer(out)
    try:
        for chunk in _chunks(data, chunk_rows):
            _require_columns(model, chunk, data)
            scored = score_chunk(model, chunk, summary, with_reasons, experiment)
            writer.write(scored)
            if on_chunk is not None:
                on_chunk(scored)
    finally:
        writer.close()
    if summary.scored + summary.rejected == 0:
        raise UserError(f"{data} has no rows.")
    return ScoredFile(out, summary)


def score_chunk(
    model: ChurnModel,
    chunk: pd.DataFrame,
    summary: Summary,
    with_reasons: bool = True,
    experiment: Experiment | None = None,
) -> pd.DataFrame:
    errors = row_errors(model, chunk)
    good = errors.isna().to_numpy()
    result = chunk.copy()
    for column in PREDICTION_COLUMNS:
        result[column] = None
    result["error"] = errors
    if good.any():
        customers = chunk[good]
        features = model.spec.prepare(customers)
        if with_reasons:
            decisions, matrix = model.decide_with_contributions_prepared(features)
        else:
            decisions = model.decide_prepared(features)
        decisions = hold_back(experiment, decisions, _customer_ids(model, customers))
        summary.add(decisions)
        frame = decisions.frame()
        frame.index = customers.index
        for column in frame.columns:
            result.loc[good, column] = frame[column].to_numpy()
        if with_reasons:
            result.loc[good, "top_reasons"] = reason_texts(matrix, model.spec, features)
    summary.reject([str(e).split(":", 1)[0] + ": " + _kind(str(e)) for e in errors[~good]])
    return result


def _customer_ids(model: ChurnModel, customers: pd.DataFrame) -> list[str | None]:
    column = model.spec.id_column
    if column is None or column not in customers.columns:
        return [None] * len(customers)
    return [None if pd.isna(value) or value == "" else str(value) for value in customers[column]]


def row_errors(model: ChurnModel, chunk: pd.DataFrame) -> pd.Series:
    """One message per bad row (None for good rows): which column, and what is wrong with it."""
    errors = pd.Series([None] * len(chunk), index=chunk.index, dtype=object)
    for name in model.spec.numeric:
        column = chunk[name]
        text = column.astype("string").str.strip()
        parsed = to_numeric(column)
        bad = parsed.isna() & text.notna() & (text != "") & ~text.str.lower().isin(["nan", "na"])
        bad &= errors.isna()
        errors[bad] = [f"{name}: {value!r} is not a number" for value in column[bad]]
    return errors


def _require_columns(model: ChurnModel, chunk: pd.DataFrame, data: Path) -> None:
    missing = [name for name in model.spec.names if name not in chunk.columns]
    if missing:
        raise UserError(
            f"{data} lacks the feature columns {', '.join(missing)}; "
            f"it has {', '.join(map(str, chunk.columns))}."
        )


def _chunks(data: Path, rows: int) -> Iterator[pd.DataFrame]:
    try:
        if is_parquet(data):
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(data).iter_batches(batch_size=rows):
                yield batch.to_pandas()
            return
        # Text in, text out: every input column is written back exactly as it was read.
        yield from pd.read_csv(data, chunksize=rows, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise UserError(f"Could not parse {data}: {str(exc).splitlines()[0]}") from exc


def _kind(message: str) -> str:
    return "not a number" if message.endswith("is not a number") else message.split(": ", 1)[-1]


class _Writer:
    """Appends chunks to CSV or Parquet, keeping one schema for the whole file."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.parquet = is_parquet(out)
        self.first = True
        self._parquet_writer: Any = None

    def write(self, chunk: pd.DataFrame) -> None:
        if self.parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(typed_predictions(chunk), preserve_index=False)
            if self._parquet_writer is None:
                self._parquet_writer = pq.ParquetWriter(self.out, table.schema)
            self._parquet_writer.write_table(table.cast(self._parquet_writer.schema))
        else:
            chunk.to_csv(self.out, mode="w" if self.first else "a", header=self.first, index=False)
        self.first = False

    def close(self) -> None:
        if self._parquet_writer is not None:
            self._parquet_writer.close()


def typed_predictions(chunk: pd.DataFrame) -> pd.DataFrame:
    """The prediction columns in the types Parquet and Spark store (numbers, booleans, text)."""
    typed = chunk.copy()
    for column, dtype in (
        ("churn_probability", float), ("decile", float), ("segment_id", float),
        ("expected_value", float), ("customer_value", float),
    ):  # fmt: skip
        typed[column] = pd.to_numeric(typed[column], errors="coerce").astype(dtype)
    typed["churn"] = typed["churn"].astype("boolean")
    for column in (
        "risk_tier", "segment", "action", "experiment", "treatment", "held_back_action",
        "top_reasons", "error",
    ):  # fmt: skip
        typed[column] = typed[column].astype("string")
    return typed
