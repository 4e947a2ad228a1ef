"""Overload: offer more than the service can answer, then check how it sheds and recovers.

Locust offers `rate` requests/s with enough users to keep offering it while latency climbs.
Every answer is checked as in the load test; a 503 whose body is the documented "Overloaded"
message counts as shed, anything else that is not a right answer counts as wrong. A probe sends
one single-customer request every 50 ms on its own connection, during and after the load, and
gives the recovery time: from the end of the load to the first answer in under 100 ms.
"""

from __future__ import annotations

import csv
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from loadtests.customers import load_records
from loadtests.gate import read_summary
from loadtests.headless import locust_command

PROBE_INTERVAL_S = 0.05
RECOVERED_MS = 100.0
SHED_MARKER = '"error": "Overloaded'


@dataclass(frozen=True)
class Overload:
    offered: int
    answered_per_second: float
    p99_ms: float
    shed: int
    wrong: int
    recovery_s: float | None  # None: never answered fast again while the probe ran


@dataclass(frozen=True)
class ProbeAnswer:
    at: float  # time.time()
    status: int
    ms: float


class Probe(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.answers: list[ProbeAnswer] = []
        self.done = threading.Event()

    def run(self) -> None:
        body = {"customers": load_records(limit=1)}
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.done.is_set():
                started = time.perf_counter()
                try:
                    status = client.post("/predict", json=body).status_code
                except httpx.HTTPError:
                    status = 0
                elapsed_ms = (time.perf_counter() - started) * 1000
                self.answers.append(ProbeAnswer(time.time(), status, elapsed_ms))
                time.sleep(PROBE_INTERVAL_S)


def measure(url: str, rate: int, seconds: int, folder: Path) -> Overload:
    # Each user offers 5 requests/s, so the offered rate holds until latency passes 200 ms: at
    # twice the best rate that puts more requests in flight than a worker admits.
    users = max(64, rate // 5)
    prefix = folder / f"overload_{rate}"
    env = {**os.environ, "LOADTEST_RATE": str(rate), "LOADTEST_USERS": str(users)}
    probe = Probe(url)
    probe.start()
    warm_up = 3
    command = locust_command(url, users, max(1, users // warm_up), seconds + warm_up, prefix, True)
    subprocess.run(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    time.sleep(6)
    probe.done.set()
    probe.join()

    summary = read_summary(Path(f"{prefix}_stats.csv"))
    shed, wrong = _failures(Path(f"{prefix}_failures.csv"))
    load_ended = _last_loaded_second(Path(f"{prefix}_stats_history.csv"))
    recovered = [
        a for a in probe.answers if a.at > load_ended and a.status == 200 and a.ms < RECOVERED_MS
    ]
    return Overload(
        offered=rate,
        answered_per_second=summary.requests_per_second
        * (1 - summary.failures / max(1, summary.requests)),
        p99_ms=summary.p99_ms,
        shed=shed,
        wrong=wrong,
        recovery_s=(recovered[0].at - load_ended) if recovered else None,
    )


def _failures(failures_csv: Path) -> tuple[int, int]:
    shed = wrong = 0
    with failures_csv.open() as handle:
        for row in csv.DictReader(handle):
            count = int(row["Occurrences"])
            if "status 503" in row["Error"] and SHED_MARKER in row["Error"]:
                shed += count
            else:
                wrong += count
    return shed, wrong


def _last_loaded_second(history_csv: Path) -> float:
    """The last second at which Locust reported users sending requests (one row a second).

    The load may have lasted up to a second longer, so the recovery time is an upper bound.
    """
    with history_csv.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["Name"] == "Aggregated"]
    return max(float(r["Timestamp"]) for r in rows if int(r["User Count"]) > 0)
