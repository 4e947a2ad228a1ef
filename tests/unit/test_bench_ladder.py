"""How `make bench` turns Locust runs into its table: which steps count, medians and ratios."""

from __future__ import annotations

import pytest

from loadtests.bench_report import Measured, print_report
from loadtests.gate import RunSummary
from loadtests.ladder import ClosedLoop, Load, Step, best_within, closed_loop_environment


def _step(rate: int, achieved: float, p99_ms: float, failures: int = 0) -> Step:
    return Step(rate, RunSummary(int(achieved * 10), failures, achieved, 5.0, p99_ms))


def test_a_step_holds_with_no_failure_and_the_offered_rate_achieved() -> None:
    assert _step(1000, 975.0, 40).held
    assert not _step(1000, 960.0, 40).held
    assert not _step(1000, 1000.0, 40, failures=1).held


def test_the_best_step_within_a_p99_target_is_the_fastest_within_it() -> None:
    steps = [_step(200, 199, 12), _step(400, 398, 45), _step(600, 590, 160), _step(800, 795, 480)]
    assert best_within(steps, 50) == steps[1]
    assert best_within(steps, 100) == steps[1]
    assert best_within(steps, 500) == steps[3]
    assert best_within(steps, 10) is None


def _measured(name: str, closed_rps: float, at_500: float | None) -> Measured:
    closed = ClosedLoop(RunSummary(1000, 0, closed_rps, 20.0, 90.0), 800.0)
    step = None if at_500 is None else _step(int(at_500), at_500, 300)
    return Measured(name, closed, {50.0: None, 500.0: step})


def test_ratios_appear_only_where_both_sides_have_a_figure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = [[_measured("ours", 1500.0, 1200.0), _measured("theirs", 300.0, 400.0)]]
    print_report(runs, (50.0, 500.0), "theirs", 2, None)
    table = {
        line.split(" | ")[0].strip("| "): line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| ")
    }
    ours = table["ours"].split(" | ")
    assert ours[1] == "1,500 (5.0x)"
    assert ours[4] == "-"  # nobody held a step within 50 ms: no ratio either
    assert ours[5].startswith("1,200 (3.0x)")
    assert table["theirs"].split(" | ")[1] == "300"


def test_a_run_without_a_figure_ranks_lowest_in_the_median(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = [[_measured("ours", rps, at)] for rps, at in [(1.0, None), (2.0, 900.0), (3.0, 950.0)]]
    print_report(runs, (50.0, 500.0), "theirs", 2, None)
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| ours"))
    assert row.split(" | ")[5].startswith("900")


def test_the_closed_loop_sends_single_customers_whatever_the_load_mixes() -> None:
    mixed = Load("bentoml", api_key="chn_key")
    environment = closed_loop_environment(mixed, users=64)
    assert environment["LOADTEST_BATCH_SHARE"] == "0"
    assert environment["LOADTEST_API_KEY"] == "chn_key"
    assert environment["LOADTEST_USERS"] == "64"
    assert "LOADTEST_BATCH_SHARE" not in mixed.environment(rate=500, users=64)
