"""What keeping a customer is worth: a column formula (`MonthlyCharges * 12`) or a constant.

A formula is arithmetic (+ - * / ** and parentheses) on numbers and numeric feature columns;
a column whose name is not an identifier goes in backticks, as in pandas: `` `Monthly fee` * 12``.
It is compiled once and evaluated on numpy arrays: `DataFrame.eval` per batch cost as much as
scoring the batch.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType

import numpy as np
import pandas as pd

from churn.columns import Table
from churn.errors import UserError

ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd,
)  # fmt: skip
QUOTED_COLUMN = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class CustomerValue:
    formula: str | None
    constant: float

    def of(self, features: Table) -> np.ndarray:
        if self.formula is None:
            return np.full(len(features), self.constant)
        code, columns = _compile(self.formula)
        missing = [column for column in columns.values() if column not in features.columns]
        if missing:
            raise UserError(f"Unknown column(s) {', '.join(map(repr, missing))}.")
        arrays = {name: _numbers(features, column) for name, column in columns.items()}
        with np.errstate(all="ignore"):
            values = np.broadcast_to(eval(code, {"__builtins__": {}}, arrays), len(features))
        values = np.asarray(values, dtype=float)
        return np.where(np.isfinite(values), values, self.constant)

    def check(self, features: pd.DataFrame) -> None:
        """Fail at training time, with the columns named, if the formula cannot be computed."""
        if self.formula is None:
            return
        try:
            self.of(features.head(5))
        except UserError as exc:
            raise UserError(
                f"Cannot compute customer value from {self.formula!r}: {exc} "
                f"Columns: {', '.join(map(str, features.columns))}."
            ) from exc


def _numbers(features: Table, column: str) -> np.ndarray:
    try:
        return np.asarray(features[column], dtype=float)
    except (ValueError, TypeError) as exc:
        raise UserError(f"Column {column!r} is not numeric.") from exc


@lru_cache(maxsize=8)
def _compile(formula: str) -> tuple[CodeType, dict[str, str]]:
    """The compiled formula and, for each name in it, the column it stands for."""
    columns: dict[str, str] = {}

    def name_for(match: re.Match[str]) -> str:
        name = f"_column_{len(columns)}"
        columns[name] = match.group(1)
        return name

    source = QUOTED_COLUMN.sub(name_for, formula)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise UserError(f"Not a formula ({exc.msg}).") from exc
    for node in ast.walk(tree):
        if not isinstance(node, ALLOWED_NODES):
            raise UserError(
                f"Only + - * / ** and parentheses on numbers and columns are allowed, "
                f"not {type(node).__name__}."
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise UserError(f"{node.value!r} is not a number.")
        if isinstance(node, ast.Name) and node.id not in columns:
            columns[node.id] = node.id
    return compile(tree, "<customer value formula>", "eval"), columns
