"""The service's CPU per request over a load test: CPU seconds of `bentoml serve` and all its
processes (from /proc), divided by the requests its own /metrics counted in between.

    python -m loadtests.service_cpu snapshot PID URL > before.json
    python -m loadtests.service_cpu report before.json PID URL
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REQUESTS_METRIC = "bentoml_service_request_total"


@dataclass(frozen=True)
class Snapshot:
    cpu_s: float
    requests: float


def process_tree(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = (task / "children").read_text().split()
            queue.extend(int(child) for child in children)
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU of `pid` and every process under it."""
    total = 0
    for member in process_tree(pid):
        # Fields after the command name, which may itself hold spaces, in parentheses.
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def wait_until_idle(
    pid: int, share: float = 0.05, interval_s: float = 0.5, timeout_s: float = 60.0
) -> bool:
    """Wait until `pid` and its processes use under `share` of a core over `interval_s`, so
    that start-up work (the monitor's first refresh, about a CPU-second) is not counted
    against the requests of a load that follows; False if they never settle in `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(interval_s)
        after = cpu_seconds(pid)
        if after - before < share * interval_s:
            return True
        before = after
    return False


def requests_served(url: str) -> float:
    return predict_requests(httpx.get(f"{url}/metrics", timeout=10).text)


def predict_requests(metrics_text: str) -> float:
    """/predict requests answered, from BentoML's request counter in Prometheus text."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text.splitlines()
        if line.startswith(REQUESTS_METRIC + "{") and 'endpoint="/predict"' in line
    )


def snapshot(pid: int, url: str) -> Snapshot:
    return Snapshot(cpu_seconds(pid), requests_served(url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["snapshot", "report"])
    parser.add_argument("rest", nargs="+")
    args = parser.parse_args()
    if args.action == "snapshot":
        pid, url = args.rest
        print(json.dumps(asdict(snapshot(int(pid), url))))
        return
    before_file, pid, url = args.rest
    before = Snapshot(**json.loads(Path(before_file).read_text()))
    after = snapshot(int(pid), url)
    requests = after.requests - before.requests
    cpu = after.cpu_s - before.cpu_s
    per_request = cpu / requests * 1e6 if requests else float("nan")
    print(
        f"service CPU: {per_request:.0f} µs per /predict request "
        f"({requests:.0f} requests, {cpu:.1f} CPU-s)"
    )


if __name__ == "__main__":
    main()
