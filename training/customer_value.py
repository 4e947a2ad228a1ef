"""What keeping a customer is worth: a column formula (`MonthlyCharges * 12`) or a constant."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.errors import UserError


@dataclass(frozen=True)
class CustomerValue:
    formula: str | None
    constant: float

    def of(self, features: pd.DataFrame) -> np.ndarray:
        if self.formula is None:
            return np.full(len(features), self.constant)
        values = np.asarray(features.eval(self.formula), dtype=float)
        return np.where(np.isnan(values), self.constant, values)

    def check(self, features: pd.DataFrame) -> None:
        """Fail at training time, with the columns named, if the formula cannot be computed."""
        if self.formula is None:
            return
        try:
            self.of(features.head(5))
        except Exception as exc:  # pandas raises many kinds for a bad expression
            raise UserError(
                f"Cannot compute customer value from {self.formula!r}: {exc}. "
                f"Columns: {', '.join(map(str, features.columns))}."
            ) from exc
