"""How often the challenger agrees with the champion on the same customers, over the last
customers both scored in this worker: the `churn_challenger_agreement` gauges."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from serving import metrics

# The gauges cover about this many of the latest customers scored by both.
WINDOW_CUSTOMERS = 10_000


class RollingAgreement:
    def __init__(self, window: int = WINDOW_CUSTOMERS) -> None:
        self.window = window
        # Per batch added: customers, same risk tier, same action.
        self._batches: deque[tuple[int, int, int]] = deque()
        self._totals = [0, 0, 0]
        self._lock = threading.Lock()

    def add(self, champion: Sequence[dict[str, Any]], challenger: Sequence[dict[str, Any]]) -> None:
        """Count the customers both answered (the same customers, in the same order)."""
        if not champion:
            return
        pairs = list(zip(champion, challenger, strict=True))
        batch = (
            len(pairs),
            sum(a["risk_tier"] == b["risk_tier"] for a, b in pairs),
            sum(a["action"] == b["action"] for a, b in pairs),
        )
        with self._lock:
            self._batches.append(batch)
            self._totals = [total + part for total, part in zip(self._totals, batch, strict=True)]
            while self._totals[0] - self._batches[0][0] >= self.window:
                oldest = self._batches.popleft()
                self._totals = [t - o for t, o in zip(self._totals, oldest, strict=True)]
            customers, same_tier, same_action = self._totals
        metrics.record_challenger_agreement(same_tier / customers, same_action / customers)

    @property
    def customers(self) -> int:
        return self._totals[0]
