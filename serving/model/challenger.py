"""The challenger: the version a second registry alias points at, scored beside the champion.

Follow mode loads it and keeps it up to date (serving/model/follow.py, with the same schema
checks as the champion's); until it has loaded, the champion answers alone.

- **shadow**: after the champion's answers are made, the customers go to a queue, and a
  thread of the worker scores them with the challenger in batches of its own; its decisions
  are recorded in the history (role `challenger`, shadow) and never answered. Past
  `queue_customers` waiting, new customers are dropped and counted, never the champion's.
- **canary**: a share of customers, picked by a salted hash of the customer id (the request
  id for customers without one), so a customer keeps its arm, is answered by the challenger;
  the champion's decisions for them are recorded as shadow, so both arms are known for all.

Either way a share picks the customers by the same hash, and every customer scored by both
counts towards the agreement gauges.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from churn.assignment import in_share
from churn.experiment import Experiment
from history.records import Role, ScoredBatch
from serving import metrics
from serving.model.agreement import RollingAgreement
from serving.model.answers import customer_id, decide
from serving.model.served import Served

log = logging.getLogger(__name__)

Mode = Literal["shadow", "canary"]
# Customers the shadow thread scores at once, and how long it lets them gather.
SHADOW_BATCH = 2000
GATHER_S = 0.05


class Shadowed(NamedTuple):
    """Customers the champion answered, waiting for the challenger."""

    customers: Sequence[Any]
    clients: Sequence[str] | None
    request_ids: Sequence[str] | None
    champion_answers: Sequence[dict[str, Any]]


class Canary(NamedTuple):
    """A batch answered in canary mode: the answers in request order, and what to record."""

    answers: list[dict[str, Any]]
    records: list[ScoredBatch]


class Challenger:
    def __init__(
        self,
        mode: Mode,
        share: float,
        salt: str,
        queue_customers: int,
        record: Callable[[ScoredBatch], None] | None,
        experiment: Experiment | None = None,
    ) -> None:
        self.mode = mode
        self.share = share
        self.salt = salt
        self.queue_customers = queue_customers
        self.record = record
        self.experiment = experiment
        self.current: Served | None = None
        self.agreement = RollingAgreement()
        self._queue: deque[Shadowed] = deque()
        self._queued = 0
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._stop = False
        self._thread: threading.Thread | None = None

    def serve(self, served: Served) -> None:
        """Score with `served` from the next batch on."""
        self.current = served

    def start(self) -> None:
        if self.mode == "shadow":
            self._thread = threading.Thread(target=self._run, name="challenger", daemon=True)
            self._thread.start()

    def close(self) -> None:
        with self._ready:
            self._stop = True
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(10)

    def picked(self, customer_ids: Sequence[str | None], request_ids: Sequence[str]) -> list[bool]:
        """Whether each customer is in the challenger's share: the same answer for the same
        customer id (or, without one, request id) every time."""
        keys = [
            customer or request for customer, request in zip(customer_ids, request_ids, strict=True)
        ]
        return in_share(self.salt, keys, self.share)

    def canary(
        self,
        champion: Served,
        challenger: Served,
        customers: Sequence[Any],
        clients: Sequence[str] | None,
        request_ids: Sequence[str] | None,
    ) -> Canary:
        """Answer a batch: the customers in the canary get the challenger's answers, the rest
        the champion's; the champion's decisions for the canary's customers are recorded as
        shadow."""
        every = range(len(customers))
        picked = self.picked([customer_id(c) for c in customers], request_ids or [""] * len(every))
        canary = [i for i in every if picked[i]]
        rest = [i for i in every if not picked[i]]
        answers, decisions = decide(champion, customers, experiment=self.experiment)
        scored = Scored(champion.name, answers, customers, request_ids, clients,
                        decisions.customer_value.tolist())  # fmt: skip
        metrics.record_predictions(
            decisions.probability[rest], decisions.tier[rest], _at(clients, rest),
            decisions.decile[rest],
        )  # fmt: skip
        if not canary:
            return Canary(answers, [scored.part(rest)])
        in_canary = [customers[i] for i in canary]
        rival_answers, rival = decide(challenger, in_canary, "challenger", self.experiment)
        metrics.record_predictions(
            rival.probability, rival.tier, _at(clients, canary), rival.decile
        )
        metrics.count_challenger_predictions("canary", len(canary))
        self.agreement.add([answers[i] for i in canary], rival_answers)
        rival_scored = Scored(challenger.name, rival_answers, in_canary, _at(request_ids, canary),
                              _at(clients, canary), rival.customer_value.tolist())  # fmt: skip
        records = [
            scored.part(rest),
            scored.part(canary, shadow=True),
            rival_scored.part(range(len(canary)), role="challenger"),
        ]
        for index, answer in zip(canary, rival_answers, strict=True):
            answers[index] = answer
        return Canary(answers, [record for record in records if len(record)])

    def shadow(
        self,
        customers: Sequence[Any],
        clients: Sequence[str] | None,
        request_ids: Sequence[str] | None,
        champion_answers: Sequence[dict[str, Any]],
    ) -> None:
        """Queue the customers in the share that the champion has answered for the challenger:
        one append."""
        if self.share < 1:
            ids = request_ids or [""] * len(customers)
            chosen = [
                i for i, pick in enumerate(self.picked([customer_id(c) for c in customers], ids))
                if pick
            ]  # fmt: skip
            if not chosen:
                return
            customers = [customers[i] for i in chosen]
            champion_answers = [champion_answers[i] for i in chosen]
            clients, request_ids = _at(clients, chosen), _at(request_ids, chosen)
        count = len(customers)
        with self._ready:
            if self._queued + count > self.queue_customers:
                full = True
            else:
                full = False
                self._queue.append(Shadowed(customers, clients, request_ids, champion_answers))
                self._queued += count
                # Woken for the first customers, and early for a full batch; not for each.
                if self._queued == count or self._queued >= SHADOW_BATCH:
                    self._ready.notify()
        if full:
            metrics.count_challenger_dropped(count)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stop:
                    self._ready.wait()
                if self._stop:
                    return
                # Let a batch gather: a model scores a hundred customers at once for little
                # more than one, and this thread takes turns with the event loop for the GIL.
                gathered_by = time.monotonic() + GATHER_S
                while self._queued < SHADOW_BATCH and not self._stop:
                    left = gathered_by - time.monotonic()
                    if left <= 0:
                        break
                    self._ready.wait(left)
                taken = list(self._queue)
                self._queue.clear()
                self._queued = 0
            challenger = self.current
            if challenger is None:
                continue
            try:
                self._score(challenger, taken)
            except Exception:
                metrics.count_challenger_dropped(sum(len(s.customers) for s in taken))
                log.exception("The shadow challenger failed to score a batch; it was dropped")

    def _score(self, challenger: Served, taken: list[Shadowed]) -> None:
        for chunk in _chunks(taken, SHADOW_BATCH):
            customers = [c for shadowed in chunk for c in shadowed.customers]
            answers, decisions = decide(challenger, customers, experiment=self.experiment)
            champion = [a for shadowed in chunk for a in shadowed.champion_answers]
            self.agreement.add(champion, answers)
            metrics.count_challenger_predictions("shadow", len(answers))
            if self.record is not None:
                self.record(
                    ScoredBatch(
                        datetime.now(UTC),
                        "api",
                        challenger.name,
                        answers,
                        customers,
                        _joined([s.request_ids for s in chunk], [len(s.customers) for s in chunk]),
                        _joined([s.clients for s in chunk], [len(s.customers) for s in chunk]),
                        customer_values=decisions.customer_value.tolist(),
                        role="challenger",
                        shadow=True,
                    )
                )


class Scored(NamedTuple):
    """One version's answers to a batch, as the history records them."""

    model_name: str
    answers: list[dict[str, Any]]
    customers: Sequence[Any]
    request_ids: Sequence[str] | None
    clients: Sequence[str] | None
    customer_values: list[float]

    def part(
        self, indexes: Sequence[int], role: Role = "champion", shadow: bool = False
    ) -> ScoredBatch:
        return ScoredBatch(
            datetime.now(UTC),
            "api",
            self.model_name,
            [self.answers[i] for i in indexes],
            [self.customers[i] for i in indexes],
            _at(self.request_ids, indexes),
            _at(self.clients, indexes),
            customer_values=[self.customer_values[i] for i in indexes],
            role=role,
            shadow=shadow,
        )


def _at(values: Sequence[str] | None, indexes: Sequence[int]) -> list[str] | None:
    return None if values is None else [values[i] for i in indexes]


def _chunks(taken: list[Shadowed], size: int) -> list[list[Shadowed]]:
    """The queued requests in groups of about `size` customers, never splitting one."""
    chunks: list[list[Shadowed]] = [[]]
    count = 0
    for shadowed in taken:
        if chunks[-1] and count + len(shadowed.customers) > size:
            chunks.append([])
            count = 0
        chunks[-1].append(shadowed)
        count += len(shadowed.customers)
    return chunks


def _joined(parts: list[Sequence[str] | None], sizes: list[int]) -> list[str | None]:
    return [
        value
        for part, size in zip(parts, sizes, strict=True)
        for value in (part if part is not None else [None] * size)
    ]
