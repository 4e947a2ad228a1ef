"""make bench-swap: follow mode swapping versions under load, measured.

`bentoml serve` with 2 workers in follow mode, Locust at `--rate` requests/s (1,000) for the
whole run, and a probe sending one customer every 20 ms that notes each answer's version. Two
swaps: the alias moves to `--to` and the promotion is published on Redis as the webhook relay
does (push), then it moves back and the workers notice it by polling. Reported for each swap
window (alias moved to both workers serving, plus 1 s): Locust's rate and p99 over the
requests it started in the window, beside the same for the 10 s before any swap; the swap time
from the metric; each worker's memory before, at its peak during, and after the swap; the
versions held (churn_models_in_memory) and the versions the answers carried. Needs two
registered versions with the same request schema (`make bench-swap` uses the production
profile's stores: `make champion train` with them registers two). Fails on any
failed request, a p99 over 100 ms in a window, an old version answering after its swap, or
one still held 10 s after it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import redis

from churn.errors import UserError
from loadtests.customers import load_records
from loadtests.gate import read_summary
from loadtests.headless import locust_command
from loadtests.servers import BIN, wait_until_ready

CHANNEL = "churn:champion"
MODELS_IN_MEMORY = "churn_models_in_memory"
MAX_P99_MS = 100


@dataclass
class Probe:
    url: str
    record: dict[str, object]
    seen: list[tuple[float, float, int, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    response = client.post("/predict", json={"customers": [self.record]})
                    version = response.json()[0]["model_version"] if response.is_success else None
                    status = response.status_code
                except httpx.HTTPError:
                    version, status = None, 0
                self.seen.append((started, time.monotonic() - started, status, version))
                time.sleep(0.02)

    def window(self, start: float, end: float) -> list[tuple[float, float, int, str | None]]:
        return [sample for sample in self.seen if start <= sample[0] <= end]


def _scrape(url: str) -> str:
    # Each scrape costs a worker milliseconds of CPU: the bench scrapes twice a second at most.
    return httpx.get(f"{url}/metrics", timeout=10).text


def _metric(metrics: str, name: str, **labels: str) -> float:
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith(name) and all(label in line for label in wanted)
    )


def _read_latencies(path: Path) -> list[tuple[float, float]]:
    """(start in Unix seconds, response time in ms) of every request Locust sent."""
    with path.open() as handle:
        return [
            (float(row["started"]), float(row["response_ms"])) for row in csv.DictReader(handle)
        ]


def _locust_in_window(
    latencies: list[tuple[float, float]], start: float, end: float
) -> dict[str, float | None]:
    """Locust's requests that started within [start, end] (Unix seconds): their rate and p99."""
    inside = sorted(ms for started, ms in latencies if start <= started <= end)
    return {
        "locust_requests_per_second": len(inside) / (end - start),
        "locust_p99_ms": inside[max(int(len(inside) * 0.99) - 1, 0)] if inside else None,
    }


def _workers(server: psutil.Process) -> list[psutil.Process]:
    return [p for p in server.children(recursive=True) if "worker-id" in " ".join(p.cmdline())]


class Alias:
    """The champion alias, moved as `training promote` moves it, through one registry client
    made before the run, so no client start-up falls inside a swap window."""

    def __init__(self) -> None:
        from registry.client import connect
        from registry.settings import RegistrySettings

        self.settings = RegistrySettings()
        self.client = connect(self.settings)

    def check(self, *versions: str) -> None:
        """Fail with a message, not a traceback, when a version to swap between is missing."""
        from registry.client import get_version

        try:
            for version in versions:
                get_version(self.client, self.settings.model_name, version)
        except UserError as error:
            raise SystemExit(
                f"{error} The registry is {self.settings.tracking_uri}; `make train` with "
                "MLFLOW_TRACKING_URI set to it registers one more version."
            ) from error

    def move(self, version: str) -> None:
        from registry.client import set_alias

        set_alias(self.client, self.settings.model_name, self.settings.model_alias, version)


@dataclass
class Window:
    """One swap, from the alias moving to both workers serving the new version, then 10 s on."""

    started: float
    started_wall: float
    done: float = 0.0
    done_wall: float = 0.0
    rss_peak: dict[int, int] = field(default_factory=dict)
    rss_after: dict[int, int] = field(default_factory=dict)
    models_peak: float = 0.0
    models_after: float = 0.0

    def wait_for_swaps(
        self, url: str, swaps: int, workers: list[psutil.Process], timeout: float = 180
    ) -> None:
        """Wait until `swaps` swaps in all, sampling memory and the models held."""
        self.rss_peak = {w.pid: w.memory_info().rss for w in workers}
        deadline = time.monotonic() + timeout
        while True:
            metrics = _scrape(url)
            self.models_peak = max(self.models_peak, _metric(metrics, MODELS_IN_MEMORY))
            if _metric(metrics, "churn_model_reload_total", result="swapped") >= swaps:
                break
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not swap in time")
            for worker in workers:
                self.rss_peak[worker.pid] = max(self.rss_peak[worker.pid], worker.memory_info().rss)
            time.sleep(0.5)
        self.done, self.done_wall = time.monotonic(), time.time()
        time.sleep(10)
        self.rss_after = {w.pid: w.memory_info().rss for w in workers}
        self.models_after = _metric(_scrape(url), MODELS_IN_MEMORY)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-version", required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--port", type=int, default=3012)
    parser.add_argument("--out", type=Path, default=Path("reports/bench-swap.json"))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="churn-swap-bench-"))
    env = {
        **os.environ,
        "CHURN_FOLLOW_ALIAS": "true",
        "CHURN_FOLLOW_POLL_S": "30",
        "CHURN_FOLLOW_BROADCAST": args.redis,
        "CHURN_WORKERS": "2",
        "CHURN_PORT": str(args.port),
        "CHURN_HISTORY_URL": f"sqlite:///{folder / 'history.db'}",
    }
    alias = Alias()
    alias.check(args.from_version, args.to)
    alias.move(args.from_version)
    url = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen(
        [str(BIN / "bentoml"), "serve", "."],
        env=env,
        stdout=(folder / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_ready(f"{url}/readyz", server)
        workers = _workers(psutil.Process(server.pid))
        command = locust_command(url, args.users, args.users, 200, folder / "load", False)
        locust = subprocess.Popen(
            command,
            env={
                **env,
                "LOADTEST_RATE": str(args.rate),
                "LOADTEST_USERS": str(args.users),
                "LOADTEST_LATENCIES": str(folder / "latencies.csv"),
            },
            stdout=subprocess.DEVNULL,
            stderr=(folder / "locust.log").open("wb"),
        )
        probe = Probe(url, load_records(limit=1)[0])
        threading.Thread(target=probe.run, daemon=True).start()
        time.sleep(15)
        steady = (time.time() - 10, time.time())
        before = {w.pid: w.memory_info().rss for w in workers}

        alias.move(args.to)
        push = Window(time.monotonic(), time.time())  # the alias has moved
        redis.Redis.from_url(args.redis).publish(
            CHANNEL,
            json.dumps(
                {"name": "churn", "alias": "champion", "version": args.to, "at": time.time()}
            ),
        )
        push.wait_for_swaps(url, 2, workers)

        alias.move(args.from_version)  # no broadcast: the workers poll
        poll = Window(time.monotonic(), time.time())
        poll.wait_for_swaps(url, 4, workers)
        probe.stop.set()
        metrics = _scrape(url)
        push_seconds = _metric(metrics, "churn_model_swap_seconds_sum", noticed_by="push")
        poll_seconds = _metric(metrics, "churn_model_swap_seconds_sum", noticed_by="poll")
        locust.terminate()
        locust.wait(60)
    finally:
        server.terminate()
        server.wait(60)

    summary = read_summary(folder / "load_stats.csv")
    latencies = _read_latencies(folder / "latencies.csv")
    result: dict[str, object] = {
        "locust": {
            "requests": summary.requests,
            "failures": summary.failures,
            "requests_per_second": summary.requests_per_second,
        },
        "before_any_swap": _locust_in_window(latencies, *steady),
    }
    mixed_after = []
    window_p99: dict[str, float | None] = {}
    for name, window, version in (("push", push, args.to), ("poll", poll, args.from_version)):
        samples = probe.window(window.started, window.done + 1.0)
        probe_ms = sorted(sample[1] * 1000 for sample in samples)
        later = [s[3] for s in probe.seen if window.done + 0.5 < s[0] < window.done + 10]
        mixed_after += [v for v in later if v != version]
        seen = _locust_in_window(latencies, window.started_wall, window.done_wall + 1.0)
        window_p99[name] = seen["locust_p99_ms"]
        result[name] = {
            "window_s": window.done - window.started,
            **seen,
            "probe_requests": len(samples),
            "probe_failures": sum(1 for s in samples if s[2] != 200),
            "probe_median_ms": statistics.median(probe_ms) if probe_ms else None,
            "versions_in_window": sorted({str(s[3]) for s in samples}),
            "models_in_memory": {"peak": window.models_peak, "after": window.models_after},
            "rss_mb": {
                str(pid): {
                    "before": before[pid] / 2**20,
                    "peak": window.rss_peak[pid] / 2**20,
                    "after": window.rss_after[pid] / 2**20,
                }
                for pid in before
            },
        }
    result["swap_seconds_mean"] = {"push": push_seconds / 2, "poll": poll_seconds / 2}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    problems = []
    if summary.failures:
        problems.append(f"{summary.failures} failed requests (Locust)")
    if any(s[2] != 200 for s in probe.seen):
        problems.append("the probe had failed requests")
    if mixed_after:
        problems.append(f"{len(mixed_after)} answers from the old version after a swap")
    for name, window in (("push", push), ("poll", poll)):
        p99 = window_p99[name]
        if p99 is not None and p99 > MAX_P99_MS:
            problems.append(f"{name}: Locust's p99 over the swap {p99:.0f} ms > {MAX_P99_MS} ms")
        if window.models_after > 1:
            held = f"{window.models_after:g} versions"
            problems.append(f"{name}: {held} still held 10 s after the swap")
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
