"""The faults: what each one breaks, how it ends, and how to tell the service has recovered.

Each `recovered` is asked again and again from the moment the fault ends (for a killed
worker, from the kill) until it holds; the time that took is the table's "time to recover".
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from chaos.history_rows import history_rows
from chaos.load import Answer, answer_to, request_body
from chaos.stack import FOLLOW_POLL_S, KEY_CACHE_S, Stack
from loadtests.metrics_page import metric_total

LARGE = 1000  # customers in each request that keeps the workers busy before the kill
LARGE_SENDERS = 4


@dataclass
class Run:
    """What a fault's recovery check may look at."""

    stack: Stack
    tag: str
    answers: list[Answer]
    ended_at: float = 0.0
    # When the fault struck, if not when `inject` returned (a kill amid other traffic).
    struck_at: float | None = None
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[Run], None]
    end: Callable[[Run], None]
    recovered: Callable[[Run], bool]
    recover_within_s: float
    # Answers other than 200 the README allows while it lasts (a killed worker's open requests).
    failures_allowed: bool = False
    # False: the fault is one event (a kill), ended as soon as it is injected.
    lasts: bool = True
    # The /metrics counter (name, labels) that must show the fault; None where none does (a
    # hung write that completes once the database is back is no error).
    counted_by: tuple[str, dict[str, str]] | None = None


def _answered_rows_before(run: Run, moment: float) -> int:
    return sum(len(a.customer_ids) for a in run.answers if a.status == "200" and a.sent_at < moment)


def _history_caught_up(run: Run) -> bool:
    """Every customer answered before the fault ended is in the history."""
    return history_rows(run.stack.history_db, run.tag).found >= _answered_rows_before(
        run, run.ended_at
    )


def _new_key_works(run: Run) -> bool:
    """The key made during the outage is accepted: the table is being read again."""
    response = httpx.post(
        f"{run.stack.url}/predict",
        json={"customers": run.stack.records[:1]},
        headers={"Authorization": f"Bearer {run.notes['new key']}"},
        timeout=30,
    )
    return response.status_code == 200


def _make_key_during(run: Run) -> None:
    run.notes["new key"] = run.stack.cli(
        "serving", "keys", "create", "--name", f"made-during-{run.tag}", "--scopes", "predict"
    )


def _counting_again(run: Run) -> bool:
    """No request went through uncounted for the last second."""
    before = metric_total(run.stack.url, "churn_rate_limit_fail_open_total")
    time.sleep(1)
    return metric_total(run.stack.url, "churn_rate_limit_fail_open_total") == before


def _promote_second(run: Run) -> None:
    run.stack.cli("training", "promote", "--version", run.stack.versions[1])


def _serving_second(run: Run) -> bool:
    """Each of the answers of the last second came from the promoted version."""
    moment = time.monotonic()
    recent = [a for a in run.answers if a.status == "200" and a.sent_at > moment - 1]
    return bool(recent) and all(a.version == run.stack.versions[1] for a in recent)


def _kill_a_worker_mid_batch(run: Run) -> None:
    """Both workers kept busy with 1,000-customer requests, then one is killed: it dies with
    a batch half scored and answers not yet written to the history."""
    workers = run.stack.workers()
    run.notes["workers"] = str(len(workers))
    done = threading.Event()
    senders = [
        threading.Thread(target=_send_large, args=(run, sender, done), daemon=True)
        for sender in range(LARGE_SENDERS)
    ]
    for sender in senders:
        sender.start()
    time.sleep(2)
    os.kill(workers[0].pid, signal.SIGKILL)
    run.struck_at = time.monotonic()
    time.sleep(1)
    done.set()
    for sender in senders:
        sender.join(60)


def _send_large(run: Run, sender: int, done: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {run.stack.key}"}
    records = run.stack.records
    with httpx.Client(headers=headers, timeout=30) as client:
        number = 0
        while not done.is_set():
            ids = tuple(f"{run.tag}-large{sender}x{number}-{index}" for index in range(LARGE))
            body, sent_at = request_body(records, ids, 0), time.monotonic()
            number += 1
            try:
                response = client.post(f"{run.stack.url}/predict", json=body)
            except httpx.HTTPError as error:
                run.answers.append(Answer(sent_at, type(error).__name__, ids, None))
                continue
            run.answers.append(answer_to(response, sent_at, ids))


def _workers_back(run: Run) -> bool:
    """As many workers as before, and the last second's requests all answered."""
    moment = time.monotonic()
    recent = [a for a in run.answers if moment - 2 < a.sent_at < moment - 1]
    back = len(run.stack.workers()) == int(run.notes["workers"])
    return back and bool(recent) and all(a.status == "200" for a in recent)


def _nothing(run: Run) -> None:
    pass


def faults() -> list[Fault]:
    def proxy(name: str, action: str) -> Callable[[Run], None]:
        return lambda run: getattr(run.stack.proxies[name], action)()

    def both(*steps: Callable[[Run], None]) -> Callable[[Run], None]:
        def each(run: Run) -> None:
            for step in steps:
                step(run)

        return each

    keys_within = KEY_CACHE_S + 10
    key_errors: tuple[str, dict[str, str]] = ("churn_key_store_errors_total", {})
    fail_open: tuple[str, dict[str, str]] = ("churn_rate_limit_fail_open_total", {})
    return [
        Fault("history database refused", proxy("history", "refuse"), proxy("history", "heal"),
              _history_caught_up, 15, counted_by=("churn_history_write_errors_total", {})),
        Fault("history database hangs", proxy("history", "hang"), proxy("history", "heal"),
              _history_caught_up, 15),
        Fault("key store refused", both(proxy("keys", "refuse"), _make_key_during),
              proxy("keys", "heal"), _new_key_works, keys_within, counted_by=key_errors),
        Fault("key store hangs", both(proxy("keys", "hang"), _make_key_during),
              proxy("keys", "heal"), _new_key_works, keys_within, counted_by=key_errors),
        Fault("Redis refused", proxy("redis", "refuse"), proxy("redis", "heal"),
              _counting_again, 10, counted_by=fail_open),
        Fault("Redis hangs", proxy("redis", "hang"), proxy("redis", "heal"),
              _counting_again, 10, counted_by=fail_open),
        Fault("registry refused during a promotion",
              both(proxy("registry", "refuse"), _promote_second), proxy("registry", "heal"),
              # MLflow's client retries a refused registry with back-off for longer than the
              # outage: the poll waits and nothing fails, so nothing is counted.
              _serving_second, 4 * FOLLOW_POLL_S + 30),
        Fault("worker killed mid-batch", _kill_a_worker_mid_batch, _nothing, _workers_back, 60,
              failures_allowed=True, lasts=False),
    ]  # fmt: skip
