"""make bench-swap: follow mode swapping versions under load, measured.

`bentoml serve` with 2 workers in follow mode, Locust at `--rate` requests/s (1,000) for the
whole run, and a probe sending one customer every 20 ms that notes each answer's latency and
version. Two swaps: the alias moves to `--to` and the promotion is published on Redis as the
webhook relay does (push), then it moves back and the workers notice it by polling. Reported:
failed requests, the probe's p99 over each swap window, the swap time from the metric, each
worker's memory before, at its peak during, and after the swap, and the versions each answer
carried. Needs two registered versions with the same request schema (`make demo`, then train
again). Fails on any failed request or a mixed version after a swap completed.
"""

from __future__ import annotations

import argparse
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

from loadtests.customers import load_records
from loadtests.gate import read_summary
from loadtests.headless import locust_command
from loadtests.servers import BIN

CHANNEL = "churn:champion"


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


def _metric(url: str, name: str, **labels: str) -> float:
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(
        float(line.split()[-1])
        for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines()
        if line.startswith(name) and all(label in line for label in wanted)
    )


def _workers(server: psutil.Process) -> list[psutil.Process]:
    return [p for p in server.children(recursive=True) if "worker-id" in " ".join(p.cmdline())]


def _promote(version: str) -> None:
    """Move the alias as `training promote` does, without a CLI's start-up in the window."""
    from registry.client import connect, set_alias
    from registry.settings import RegistrySettings

    settings = RegistrySettings()
    set_alias(connect(settings), settings.model_name, settings.model_alias, version)


def _swap(
    url: str, expected_swaps: int, workers: list[psutil.Process], timeout: float = 180
) -> tuple[float, dict[int, int]]:
    """Wait for both workers to swap, sampling their memory; (when done, peak RSS by pid)."""
    peak = {w.pid: w.memory_info().rss for w in workers}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            peak[worker.pid] = max(peak[worker.pid], worker.memory_info().rss)
        if _metric(url, "churn_model_reload_total", result="swapped") >= expected_swaps:
            return time.monotonic(), peak
        time.sleep(0.2)
    raise SystemExit("the workers did not swap in time")


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
    _promote(args.from_version)
    url = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen(
        [str(BIN / "bentoml"), "serve", "."],
        env=env,
        stdout=(folder / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        workers = _workers(psutil.Process(server.pid))
        locust = subprocess.Popen(
            locust_command(url, args.users, args.users, 200, folder / "load", reset_stats=False),
            env={**env, "LOADTEST_RATE": str(args.rate)},
            stdout=subprocess.DEVNULL,
            stderr=(folder / "locust.log").open("wb"),
        )
        probe = Probe(url, load_records(limit=1)[0])
        threading.Thread(target=probe.run, daemon=True).start()
        time.sleep(15)
        before = {w.pid: w.memory_info().rss for w in workers}

        _promote(args.to)
        pushed_at = time.monotonic()  # the alias has moved
        redis.Redis.from_url(args.redis).publish(
            CHANNEL,
            json.dumps(
                {"name": "churn", "alias": "champion", "version": args.to, "at": time.time()}
            ),
        )
        pushed_done, push_peak = _swap(url, 2, workers)
        time.sleep(10)
        after_push = {w.pid: w.memory_info().rss for w in workers}

        _promote(args.from_version)  # no broadcast: the workers poll
        polled_at = time.monotonic()
        polled_done, poll_peak = _swap(url, 4, workers)
        time.sleep(10)
        after_poll = {w.pid: w.memory_info().rss for w in workers}
        probe.stop.set()
        push_seconds = _metric(url, "churn_model_swap_seconds_sum", noticed_by="push")
        poll_seconds = _metric(url, "churn_model_swap_seconds_sum", noticed_by="poll")
        locust.terminate()
        locust.wait(60)
    finally:
        server.terminate()
        server.wait(60)

    summary = read_summary(folder / "load_stats.csv")
    result: dict[str, object] = {
        "locust": {
            "requests": summary.requests,
            "failures": summary.failures,
            "requests_per_second": summary.requests_per_second,
        }
    }
    mixed_after = []
    for name, start, done, version, peak, after in (
        ("push", pushed_at, pushed_done, args.to, push_peak, after_push),
        ("poll", polled_at, polled_done, args.from_version, poll_peak, after_poll),
    ):
        samples = probe.window(start, done + 1.0)
        latencies = sorted(sample[1] for sample in samples)
        p99 = latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000 if latencies else None
        later = [s[3] for s in probe.seen if done + 0.5 < s[0] < done + 10]
        mixed_after += [v for v in later if v != version]
        result[name] = {
            "window_s": done - start,
            "probe_requests": len(samples),
            "probe_failures": sum(1 for s in samples if s[2] != 200),
            "probe_p99_ms": p99,
            "probe_median_ms": statistics.median(latencies) * 1000 if latencies else None,
            "versions_in_window": sorted({str(s[3]) for s in samples}),
            "rss_mb": {
                str(pid): {
                    "before": before[pid] / 2**20,
                    "peak": peak[pid] / 2**20,
                    "after": after[pid] / 2**20,
                }
                for pid in before
            },
        }
    result["swap_seconds_mean"] = {"push": push_seconds / 2, "poll": poll_seconds / 2}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    failed = summary.failures or any(s[2] != 200 for s in probe.seen) or mixed_after
    if failed:
        print(
            f"FAIL: {summary.failures} failed requests; answers from the old version after a "
            f"swap completed: {len(mixed_after)}"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
