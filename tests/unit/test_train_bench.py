"""make bench-train's measurement: each step line of training's log gets its time and the
peak memory sampled within it."""

from __future__ import annotations

import re
import sys

import pytest

from loadtests.process_tree import GIB, measure
from loadtests.train_bench import report

STEP = """
import time
time.sleep(0.3)
block = b"x" * (300 * 2**20)
time.sleep(0.8)
print("INFO training: Fitting catboost: 0.8 s (best iteration 12)", flush=True)
del block
time.sleep(0.5)
print("INFO training: Registering: 0.4 s", flush=True)
print("Test-set metrics (* = registered winner)")
"""


def test_a_step_gets_the_peak_sampled_within_it(capsys: pytest.CaptureFixture[str]) -> None:
    run = measure("step", 1, [sys.executable, "-c", STEP])
    assert run.peak_bytes >= 300 * 2**20
    assert report(run, rows=1_000) == []
    printed = capsys.readouterr().out
    peaks = dict(re.findall(r"\| (Fitting catboost|Registering) \| [\d.]+ \| ([\d.]+) \|", printed))
    assert float(peaks["Fitting catboost"]) >= 300 * 2**20 / GIB
    assert float(peaks["Registering"]) < 0.2
    assert "Test-set metrics" in printed
