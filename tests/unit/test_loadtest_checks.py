"""The load-test gate and response check must be able to fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.checks import check
from loadtests.gate import RunSummary, problems, read_summary

HEADER = "Type,Name,Request Count,Failure Count,Requests/s,50%,99%\n"


def test_the_gate_reads_the_aggregated_row(tmp_path: Path) -> None:
    stats = tmp_path / "stats.csv"
    stats.write_text(HEADER + "POST,/predict,10,0,5.0,3,9\n,Aggregated,30000,2,501.5,12,40\n")
    assert read_summary(stats) == RunSummary(30000, 2, 501.5, 12.0, 40.0)


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (RunSummary(30000, 0, 510.0, 10, 30), []),
        (RunSummary(30000, 0, 499.0, 10, 30), ["499.0 requests/s < 500"]),
        (RunSummary(30000, 3, 510.0, 10, 30), ["3 failed requests"]),
        (RunSummary(30000, 0, 510.0, 21, 30), ["p50 21 ms > 20 ms"]),
        (RunSummary(30000, 0, 510.0, 10, 101), ["p99 101 ms > 100 ms"]),
    ],
)
def test_the_gate_fails_each_missed_goal(summary: RunSummary, expected: list[str]) -> None:
    assert problems(summary, min_rps=500, max_p50=20, max_p99=100) == expected


CUSTOMERS = [{"customerID": "a"}, {"customerID": "b"}]


def _body(*predictions: tuple[str, float]) -> str:
    return json.dumps([{"customer_id": c, "churn_probability": p} for c, p in predictions])


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, _body(("a", 0.2), ("b", 1)), None),
        (503, "overloaded", "status 503"),
        (200, "not json", "not JSON"),
        (200, _body(("a", 0.2)), "expected 2 predictions"),
        (200, _body(("a", 1.2), ("b", 0)), "out of range"),
        (200, _body(("b", 0.2), ("a", 0)), "out of order"),
    ],
)
def test_every_response_is_checked(status: int, body: str, expected: str | None) -> None:
    problem = check(status, body, CUSTOMERS)
    assert (problem is None) if expected is None else (expected in (problem or ""))
