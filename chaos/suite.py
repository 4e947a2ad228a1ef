"""One fault under steady load, start to finish, and what it cost."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.faults import Fault, Run
from chaos.history_rows import HistoryRows, history_rows
from chaos.load import Answer, SteadyLoad
from chaos.stack import Stack
from loadtests.metrics_page import metric_total

BEFORE_S = 3.0  # load before the fault, so it starts on a service at work
AFTER_S = 2.0  # load after recovery, so the answers show it held
HISTORY_SETTLES_S = 30.0  # how long a flush may take once the database is back
# A killed worker's unwritten rows: what it answered in this long before the kill (it writes
# every CHURN_HISTORY_FLUSH_SECONDS, 0.25 s, so this is four times that).
KILLED_BUFFER_S = 1.0


@dataclass
class Outcome:
    fault: str
    sent: int
    answered_200: int
    others: Counter[str]
    rows_expected: int
    rows_found: int
    rows_twice: int
    recover_s: float | None
    counted: tuple[str, float] | None  # the counter that shows the fault, and by how much it grew
    failures: list[str] = field(default_factory=list)


def run_fault(stack: Stack, load: SteadyLoad, fault: Fault, outage_s: float, tag: str) -> Outcome:
    load.start(tag)
    time.sleep(BEFORE_S)
    run = Run(stack, tag, load.answers)
    counted_before = _counted(stack, fault)
    fault.inject(run)
    injected_at = run.struck_at or time.monotonic()
    if fault.lasts:
        time.sleep(outage_s)
    fault.end(run)
    run.ended_at = time.monotonic() if fault.lasts else injected_at
    recover_s = _time_to_recover(run, fault)
    time.sleep(AFTER_S)
    answers = load.stop()
    counted = None
    if fault.counted_by is not None:
        counted = (fault.counted_by[0], _counted(stack, fault) - counted_before)
    expected = _customers(answers, lambda a: a.status == "200")
    rows = _settled_rows(stack, tag, expected)
    outcome = Outcome(
        fault=fault.name,
        sent=len(answers),
        answered_200=sum(a.status == "200" for a in answers),
        others=Counter(a.status for a in answers if a.status != "200"),
        rows_expected=expected,
        rows_found=rows.found,
        rows_twice=rows.twice,
        recover_s=recover_s,
        counted=counted,
    )
    may_lose = 0
    if fault.failures_allowed:
        may_lose = _customers(
            answers,
            lambda a: (
                a.status == "200" and injected_at - KILLED_BUFFER_S <= a.sent_at < injected_at
            ),
        )
    outcome.failures = _failures(outcome, fault, may_lose)
    return outcome


def _counted(stack: Stack, fault: Fault) -> float:
    if fault.counted_by is None:
        return 0.0
    name, labels = fault.counted_by
    return metric_total(stack.url, name, **labels)


def _time_to_recover(run: Run, fault: Fault) -> float | None:
    give_up = run.ended_at + fault.recover_within_s + 30
    while time.monotonic() < give_up:
        if fault.recovered(run):
            return time.monotonic() - run.ended_at
        time.sleep(0.25)
    return None


def _settled_rows(stack: Stack, tag: str, expected: int) -> HistoryRows:
    deadline = time.monotonic() + HISTORY_SETTLES_S
    while (rows := history_rows(stack.history_db, tag)).found < expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return rows


def _customers(answers: list[Answer], which: Callable[[Answer], bool]) -> int:
    return sum(len(a.customer_ids) for a in answers if which(a))


def _failures(outcome: Outcome, fault: Fault, may_lose: int) -> list[str]:
    failures = []
    if outcome.others and not fault.failures_allowed:
        failures.append(f"answers other than 200: {dict(outcome.others)}")
    lost = outcome.rows_expected - outcome.rows_found
    if lost > may_lose:
        failures.append(f"{lost} answered customers missing from the history (allowed {may_lose})")
    if outcome.rows_twice:
        failures.append(f"{outcome.rows_twice} history rows written twice")
    if outcome.counted is not None and outcome.counted[1] <= 0:
        failures.append(f"not counted in {outcome.counted[0]}")
    if outcome.recover_s is None or outcome.recover_s > fault.recover_within_s:
        failures.append(f"not recovered within {fault.recover_within_s:g} s")
    return failures
