"""Offering load with Locust: one step at a fixed rate, a ladder of rising steps, a closed loop."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from loadtests.gate import RunSummary, read_summary
from loadtests.headless import locust_command
from loadtests.servers import Server
from loadtests.service_cpu import cpu_seconds, wait_until_idle

ACHIEVED_SHARE = 0.97
WARM_UP_S = 3
# The closed loop measures CPU per request, so it starts from a server in its steady state, warmed
# up as long as `make loadtest` warms it.
CLOSED_LOOP_WARM_UP_S = 10
# Far more than any server answers: constant-throughput users then never wait.
UNLIMITED_RATE = 1_000_000


@dataclass(frozen=True)
class Load:
    """What Locust sends."""

    api: str  # "bentoml" (this service) or "mlflow" (/invocations)
    endpoint: str = "predict"
    single_customers: bool = False  # else the load test's mix: 5% carry 10 to 100 customers
    api_key: str = ""

    def environment(self, rate: int, users: int) -> dict[str, str]:
        return {
            **os.environ,
            "LOADTEST_RATE": str(rate),
            "LOADTEST_USERS": str(users),
            "LOADTEST_API": self.api,
            "LOADTEST_ENDPOINT": self.endpoint,
            "LOADTEST_API_KEY": self.api_key,
            **({"LOADTEST_BATCH_SHARE": "0"} if self.single_customers else {}),
        }

    @property
    def label(self) -> str:
        return f"{self.api}_{self.endpoint}"


@dataclass(frozen=True)
class Step:
    rate: int
    summary: RunSummary

    @property
    def held(self) -> bool:
        """0 failures and the offered rate achieved (within scheduling jitter)."""
        return (
            self.summary.failures == 0
            and self.summary.requests_per_second >= ACHIEVED_SHARE * self.rate
        )


def offer(url: str, load: Load, rate: int, seconds: int, folder: Path) -> RunSummary:
    """`rate` requests/s offered for `seconds`, after a warm-up that is not counted."""
    # 64 users, and more from 1,280 requests/s on, so that no user has to send more than 20 a
    # second (each answer must come within 50 ms for that).
    users = max(64, rate // 20)
    prefix = folder / f"{load.label}_{rate}"
    command = locust_command(
        url, users, max(1, users // WARM_UP_S), seconds + WARM_UP_S, prefix, reset_stats=True
    )
    _run(command, load.environment(rate, users))
    return read_summary(Path(f"{prefix}_stats.csv"))


def climb(
    url: str, load: Load, rates: list[int], seconds: int, folder: Path, ceiling_ms: float
) -> list[Step]:
    """Every step that held, up the ladder until one does not hold or its p99 passes
    `ceiling_ms`. A step that does not hold is tried once more: one stall of the shared
    machine should not end a server's ladder at 25 requests/s."""
    held = []
    for rate in rates:
        for attempt in ("", " (again)"):
            step = Step(rate, offer(url, load, rate, seconds, folder))
            s = step.summary
            print(
                f"    offered {rate:5d}/s{attempt}: achieved {s.requests_per_second:7.1f}/s, "
                f"failures {s.failures}, p50 {s.p50_ms:g} ms, p99 {s.p99_ms:g} ms"
                + ("" if step.held else "  <- did not hold"),
                flush=True,
            )
            if step.held:
                break
        if not step.held:
            break
        held.append(step)
        if step.summary.p99_ms > ceiling_ms:
            break
    return held


def best_within(steps: list[Step], p99_ms: float) -> Step | None:
    """The held step with the highest rate whose p99 is within `p99_ms`."""
    within = [step for step in steps if step.summary.p99_ms <= p99_ms]
    return max(within, key=lambda step: step.summary.requests_per_second, default=None)


@dataclass(frozen=True)
class ClosedLoop:
    summary: RunSummary
    cpu_us_per_request: float  # every process of the server, per request answered


def closed_loop(server: Server, load: Load, users: int, seconds: int, folder: Path) -> ClosedLoop:
    """`users` sending single customers back to back: throughput with latency unlimited, and
    the server's CPU per answered request over the same run (a short run before it warms the
    server up, after the server has finished starting)."""
    if not wait_until_idle(server.pid):
        print(f"    the server at {server.url} did not settle; measuring anyway", flush=True)
    environment = closed_loop_environment(load, users)
    warm_up = locust_command(
        server.url, users, users, CLOSED_LOOP_WARM_UP_S, folder / "warm", False
    )
    _run(warm_up, environment)
    prefix = folder / f"{load.label}_closed"
    before = cpu_seconds(server.pid)
    _run(locust_command(server.url, users, users, seconds, prefix, False), environment)
    cpu = cpu_seconds(server.pid) - before
    summary = read_summary(Path(f"{prefix}_stats.csv"))
    answered = summary.requests - summary.failures
    return ClosedLoop(summary, cpu / answered * 1e6 if answered else float("nan"))


def closed_loop_environment(load: Load, users: int) -> dict[str, str]:
    """What Locust gets for a closed loop: `load`'s server and key, single customers only, at a
    rate no server answers."""
    return replace(load, single_customers=True).environment(UNLIMITED_RATE, users)


def _run(command: list[str], environment: dict[str, str]) -> None:
    subprocess.run(
        command,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
