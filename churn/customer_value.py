"""What keeping a customer is worth: a column formula (`MonthlyCharges * 12`) or a constant.

A formula is arithmetic (+ - * / ** and parentheses) on numbers and numeric feature columns;
a column whose name is not an identifier goes in backticks, as in pandas: `` `Monthly fee` * 12``.
It is compiled once and evaluated on numpy arrays: `DataFrame.eval` per batch cost as much as
scoring the batch.
"""

from __future__ import annotations

import ast
import math
import operator
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
MAX_EXPONENT = 16
OPERATIONS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow,
}  # fmt: skip


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


def check_formula(formula: str) -> None:
    """Refuse a formula that cannot be computed safely, before any data is read."""
    _compile(formula)


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
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, int | float)
        ):
            raise UserError(f"{node.value!r} is not a number.")
        if isinstance(node, ast.Name) and node.id not in columns:
            columns[node.id] = node.id
    tree = ast.fix_missing_locations(_FloatConstants().visit(tree))
    for node in ast.walk(tree):
        _check_operation(node)
    return compile(tree, "<customer value formula>", "eval"), columns


class _FloatConstants(ast.NodeTransformer):
    """Every number as a float, so nothing is computed in unbounded integers."""

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        value = node.value
        assert isinstance(value, int | float)  # checked before
        try:
            number = float(value)
        except OverflowError as exc:
            raise UserError(f"The number {str(value)[:12]}... is too large.") from exc
        if not math.isfinite(number):
            raise UserError(f"The number {node.value!r} is too large.")
        return ast.copy_location(ast.Constant(number), node)


def _check_operation(node: ast.AST) -> None:
    """Refuse what cannot be computed safely: big powers, division by zero, overflow."""
    if not isinstance(node, ast.BinOp):
        return
    right = _constant_value(node.right)
    if isinstance(node.op, ast.Pow) and (right is None or abs(right) > MAX_EXPONENT):
        raise UserError(
            f"A power needs a constant exponent between -{MAX_EXPONENT} and {MAX_EXPONENT}."
        )
    if isinstance(node.op, ast.Div) and right == 0:
        raise UserError("It divides by zero.")
    _constant_value(node)  # a constant part that overflows is refused here


def _constant_value(node: ast.AST) -> float | None:
    """The value of a part of the formula without columns, or None if it reads a column."""
    if isinstance(node, ast.Constant):
        return float(node.value) if isinstance(node.value, int | float) else None
    if isinstance(node, ast.UnaryOp):
        operand = _constant_value(node.operand)
        return None if operand is None else (-operand if isinstance(node.op, ast.USub) else operand)
    if isinstance(node, ast.BinOp):
        left, right = _constant_value(node.left), _constant_value(node.right)
        if left is None or right is None:
            return None
        try:
            value: float | complex = OPERATIONS[type(node.op)](left, right)
        except ZeroDivisionError as exc:
            raise UserError("It divides by zero.") from exc
        except OverflowError as exc:
            raise UserError("A constant part of it is too large to compute.") from exc
        if isinstance(value, complex):
            raise UserError("A constant part of it is not a real number.")
        if not math.isfinite(value):
            raise UserError("A constant part of it is too large to compute.")
        return value
    return None
