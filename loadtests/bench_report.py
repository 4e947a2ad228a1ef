"""The table `make bench` prints: medians over runs, ratios only where both sides have a figure."""

from __future__ import annotations

import json
from dataclasses import dataclass

from loadtests.ladder import ClosedLoop, Step


@dataclass(frozen=True)
class Measured:
    name: str
    closed: ClosedLoop
    within: dict[float, Step | None]  # p99 target (ms) -> best held step within it


def print_report(
    runs: list[list[Measured]],
    targets_ms: tuple[float, ...],
    baseline: str,
    workers: int,
    extras: list[str] | None,
) -> None:
    names = list(dict.fromkeys(m.name for run in runs for m in run))
    rows = {name: [m for run in runs for m in run if m.name == name] for name in names}
    closed = {
        name: _median([m.closed.summary.requests_per_second for m in ms])
        for name, ms in rows.items()
    }
    at = {
        (name, target): _median([_achieved(m.within[target]) for m in ms])
        for name, ms in rows.items()
        for target in targets_ms
    }  # fmt: skip
    print()
    print(f"{workers} workers per server, 64 closed-loop users, median of {len(runs)} run(s).")
    print("Each req/s cell: the median, then x the same figure of " + baseline + " where both")
    print("have one. '-' : no step held within that p99.")
    print()
    header = ["server", "closed loop req/s", "closed-loop p99 ms", "CPU µs/request"]
    header += [f"req/s at p99 ≤ {target:g} ms" for target in targets_ms]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, ms in rows.items():
        cells = [
            name,
            _with_ratio(closed[name], closed.get(baseline), name == baseline),
            f"{_median([m.closed.summary.p99_ms for m in ms]):g}",
            f"{_median([m.closed.cpu_us_per_request for m in ms]):,.0f}",
        ]
        for target in targets_ms:
            cells.append(
                _with_ratio(at[name, target], at.get((baseline, target)), name == baseline)
            )
        print("| " + " | ".join(cells) + " |")
    print()
    for line in extras or []:
        print(line)
    per_run = {
        name: {
            "closed_loop": [round(m.closed.summary.requests_per_second, 1) for m in ms],
            "cpu_us": [round(m.closed.cpu_us_per_request) for m in ms],
            **{f"p99_{t:g}": [_achieved(m.within[t]) for m in ms] for t in targets_ms},
        }
        for name, ms in rows.items()
    }  # fmt: skip
    print(json.dumps(per_run))


def _achieved(step: Step | None) -> float | None:
    return None if step is None else round(step.summary.requests_per_second, 1)


def _median(values: list[float | None]) -> float | None:
    """A run without a figure ranks lowest; the median of mostly missing figures is missing."""
    ranked = sorted(values, key=lambda value: -1.0 if value is None else value)
    return ranked[len(ranked) // 2]


def _with_ratio(value: float | None, baseline: float | None, is_baseline: bool) -> str:
    if value is None:
        return "-"
    if is_baseline or not baseline:
        return f"{value:,.0f}"
    return f"{value:,.0f} ({value / baseline:.1f}x)"
