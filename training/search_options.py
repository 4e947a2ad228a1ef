"""What `train --tune` was asked for, checked before the seconds of importing what searches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from churn.errors import UserError

Objective = Literal["profit", "log_loss"]


def study_sign(objective: Objective) -> int:
    """Each study maximises, so a loss is searched as its negative: multiplying by this turns
    the objective into the study's value and back."""
    return -1 if objective == "log_loss" else 1


@dataclass(frozen=True)
class SearchOptions:
    trials: int | None
    budget_minutes: float | None
    folds: int = 5
    objective: Objective = "profit"

    def check_settings(self) -> None:
        """UserError for a budget or a number of folds no search can run with."""
        if self.budget_minutes is not None and self.budget_minutes <= 0:
            raise UserError(f"--budget-minutes: {self.budget_minutes:g} is not above 0.")
        if self.trials is not None and self.trials < 1:
            raise UserError(f"--trials: {self.trials} is not 1 or more.")
        if self.folds < 2:
            raise UserError(f"--folds: {self.folds} is not 2 or more.")

    def check(self, y_train: np.ndarray) -> None:
        """`check_settings`, then a UserError when a class has fewer rows than folds."""
        self.check_settings()
        counts = np.bincount(y_train, minlength=2)
        if counts.min() < self.folds:
            raise UserError(
                f"--tune with {self.folds} folds needs at least {self.folds} rows of each class "
                f"in the training split; it has {counts[0]} who stayed and {counts[1]} who "
                "churned. Use fewer --folds or a larger table."
            )
