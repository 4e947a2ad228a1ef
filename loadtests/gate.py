"""Pass or fail a Locust run from its CSV statistics (the Aggregated row)."""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunSummary:
    requests: int
    failures: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def read_summary(stats_csv: Path) -> RunSummary:
    with stats_csv.open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    if not rows:
        raise SystemExit(f"{stats_csv} has no Aggregated row: did Locust send any request?")
    row = rows[0]
    return RunSummary(
        requests=int(row["Request Count"]),
        failures=int(row["Failure Count"]),
        requests_per_second=float(row["Requests/s"]),
        p50_ms=_ms(row["50%"]),
        p99_ms=_ms(row["99%"]),
    )


def _ms(value: str) -> float:
    """Locust writes N/A for the percentiles of a run without requests."""
    return math.inf if value == "N/A" else float(value)


def problems(summary: RunSummary, min_rps: float, max_p50: float, max_p99: float) -> list[str]:
    found = []
    if summary.requests_per_second < min_rps:
        found.append(f"{summary.requests_per_second:.1f} requests/s < {min_rps:g}")
    if summary.failures:
        found.append(f"{summary.failures} failed requests")
    if summary.p50_ms > max_p50:
        found.append(f"p50 {summary.p50_ms:g} ms > {max_p50:g} ms")
    if summary.p99_ms > max_p99:
        found.append(f"p99 {summary.p99_ms:g} ms > {max_p99:g} ms")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stats_csv", type=Path)
    parser.add_argument("--min-rps", type=float, default=500)
    parser.add_argument("--max-p50", type=float, default=20)
    parser.add_argument("--max-p99", type=float, default=100)
    args = parser.parse_args()
    summary = read_summary(args.stats_csv)
    print(
        f"{summary.requests} requests, {summary.failures} failed, "
        f"{summary.requests_per_second:.1f} requests/s, p50 {summary.p50_ms:g} ms, "
        f"p99 {summary.p99_ms:g} ms"
    )
    found = problems(summary, args.min_rps, args.max_p50, args.max_p99)
    if found:
        print("FAIL: " + "; ".join(found))
        sys.exit(1)
    print(
        f"PASS: ≥{args.min_rps:g} requests/s, 0 failures, "
        f"p50 ≤ {args.max_p50:g} ms, p99 ≤ {args.max_p99:g} ms"
    )


if __name__ == "__main__":
    main()
