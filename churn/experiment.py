"""Retention experiments: a control group held back from every recommended action.

A customer an action is recommended for is held back (treatment `control`, action
`no action`, the action it would have had kept beside) when a hash of the experiment's name and
its customer id falls in the control share, and treated otherwise. The hash alone decides, so
a customer stays in its group across requests, files, Spark tasks and the stream. Customers
without an id, and customers no action is recommended for, are in no group: there is nothing
to hold back, or no way to find their outcome.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from churn.assignment import in_share
from churn.playbook import NO_ACTION

if TYPE_CHECKING:
    from churn.model import Decisions

PLAIN_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
TREATED = "treated"
CONTROL = "control"


@dataclass(frozen=True)
class Experiment:
    name: str
    control_share: float

    def hold_back(self, decisions: Decisions, customer_ids: Sequence[str | None]) -> Decisions:
        """`decisions` with the control group's actions held back and every group named."""
        acting = decisions.action != NO_ACTION
        keys = [
            key if act else None for key, act in zip(customer_ids, acting.tolist(), strict=True)
        ]
        control = np.array(in_share(self.name, keys, self.control_share), dtype=bool)
        in_experiment = np.array([key is not None for key in keys], dtype=bool)
        treatment = np.full(len(keys), None, dtype=object)
        treatment[in_experiment] = TREATED
        treatment[control] = CONTROL
        held_back = np.full(len(keys), None, dtype=object)
        held_back[control] = decisions.action[control]
        action = decisions.action.copy()
        action[control] = NO_ACTION
        expected_value = np.where(control, 0.0, decisions.expected_value)
        experiment = np.full(len(keys), None, dtype=object)
        experiment[in_experiment] = self.name
        return replace(
            decisions,
            action=action,
            expected_value=expected_value,
            experiment=experiment,
            treatment=treatment,
            held_back_action=held_back,
        )


def hold_back(
    experiment: Experiment | None, decisions: Decisions, customer_ids: Sequence[str | None]
) -> Decisions:
    return decisions if experiment is None else experiment.hold_back(decisions, customer_ids)


class ExperimentSettings(BaseSettings):
    """The running experiment, read from CHURN_EXPERIMENT_* by every program that decides."""

    model_config = SettingsConfigDict(env_prefix="CHURN_EXPERIMENT_", extra="ignore")

    # A plain word (letters, digits, `-`, `_`): it salts the hash and names the groups.
    name: str | None = None
    # Share of the customers an action is recommended for that is held back.
    control_share: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _named_plainly(self) -> ExperimentSettings:
        if self.name is not None and not PLAIN_WORD.fullmatch(self.name):
            raise ValueError(
                f"CHURN_EXPERIMENT_NAME={self.name!r} is not a plain word: use letters, digits, "
                "'-' and '_', at most 64, starting with a letter or digit"
            )
        if self.control_share > 0 and self.name is None:
            raise ValueError(
                f"CHURN_EXPERIMENT_CONTROL_SHARE={self.control_share} needs "
                "CHURN_EXPERIMENT_NAME, which keeps each customer's group and names it"
            )
        return self

    def experiment(self) -> Experiment | None:
        return None if self.name is None else Experiment(self.name, self.control_share)
