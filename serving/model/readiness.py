"""Whether a worker can score: the example customer must get a finite probability."""

from __future__ import annotations

import logging
import math
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel

from churn.columns import Columns
from serving.model.schema import customer_columns

log = logging.getLogger(__name__)


class Decides(Protocol):
    def decide(self, customers: Columns) -> Any: ...


def can_score(model: Decides, customer: type[BaseModel], example: dict[str, Any]) -> bool:
    try:
        decisions = model.decide(customer_columns([customer.model_validate(example)]))
        probability = float(np.asarray(decisions.probability)[0])
    except Exception:
        log.exception("This worker cannot score the example customer")
        return False
    return math.isfinite(probability)
