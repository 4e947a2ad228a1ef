"""make bench: the maximum sustainable rate of our BentoML service vs `mlflow models serve`.

Both serve the same registered version with the same number of workers and take the same
Locust file; our service is measured twice, with /predict on its ASGI path (the default) and on
BentoML's API path. The offered rate steps up until a step fails; "sustainable" means 0
failures, p99 ≤ 100 ms and at least 97% of the offered rate achieved. Then: twice our best rate
as an overload run (loadtests/overload.py), the offline ceiling (rows/s scored in-process, in
batches), and on an idle service one 1,000-customer request and one single-customer /explain.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from loadtests import overload
from loadtests.customers import load_records
from loadtests.gate import RunSummary, read_summary
from loadtests.headless import locust_command
from serving.settings import ServingSettings

BIN = Path(sys.executable).parent
MAX_P99_MS = 100.0
OURS = "BentoML service (this project)"
ACHIEVED_SHARE = 0.97


@dataclass(frozen=True)
class Step:
    rate: int
    summary: RunSummary

    @property
    def sustained(self) -> bool:
        return (
            self.summary.failures == 0
            and self.summary.p99_ms <= MAX_P99_MS
            and self.summary.requests_per_second >= ACHIEVED_SHARE * self.rate
        )


@dataclass(frozen=True)
class Target:
    name: str
    key: str  # what --targets selects
    api: str  # the request format the Locust file sends
    command: list[str]
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)


def targets(model_uri: str, workers: int, port: int) -> list[Target]:
    serve = [str(BIN / "bentoml"), "serve", ".", "--port", str(port)]
    return [
        Target(OURS, "bentoml", "bentoml", serve, "/readyz"),
        Target(
            "same, /predict through BentoML's API path (CHURN_FAST_PREDICT=false)",
            "bentoml-api",
            "bentoml",
            serve,
            "/readyz",
            {"CHURN_FAST_PREDICT": "false"},
        ),
        Target(
            "mlflow models serve",
            "mlflow",
            "mlflow",
            [
                str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
                "-h", "127.0.0.1", "-p", str(port), "-w", str(workers),
            ],
            "/ping",
        ),
    ]  # fmt: skip


@contextmanager
def running(target: Target, port: int, log: Path) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        # mlflow starts `uvicorn` by name, so the venv's bin must be on PATH.
        path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, **target.env, "PATH": path}
        process = subprocess.Popen(target.command, stdout=output, stderr=output, env=env)
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise SystemExit(f"{target.name} exited early; see {log}")
                try:
                    if httpx.get(url + target.ready_path, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            else:
                raise SystemExit(f"{target.name} was not ready within 180 s; see {log}")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def offer(url: str, api: str, rate: int, seconds: int, folder: Path) -> RunSummary:
    # 64 users, and more from 1,280 requests/s on, so that no user has to send more than 20 a
    # second (each answer must come within 50 ms for that).
    users = max(64, rate // 20)
    prefix = folder / f"{api}_{rate}"
    env = {
        **os.environ,
        "LOADTEST_RATE": str(rate),
        "LOADTEST_USERS": str(users),
        "LOADTEST_API": api,
    }
    warm_up = 3
    subprocess.run(
        locust_command(url, users, max(1, users // warm_up), seconds + warm_up, prefix, True),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return read_summary(Path(f"{prefix}_stats.csv"))


def find_max_rate(url: str, api: str, rates: list[int], seconds: int, folder: Path) -> Step | None:
    """The highest step sustained. A step that fails is tried once more before the search
    stops: one stall of the shared machine should not end a run at 25 requests/s."""
    best = None
    for rate in rates:
        for attempt in ("", " (again)"):
            step = Step(rate, offer(url, api, rate, seconds, folder))
            s = step.summary
            print(
                f"    offered {rate:5d}/s{attempt}: achieved {s.requests_per_second:7.1f}/s, "
                f"failures {s.failures}, p50 {s.p50_ms:g} ms, p99 {s.p99_ms:g} ms"
                + ("" if step.sustained else "  <- not sustained"),
                flush=True,
            )
            if step.sustained:
                break
        if not step.sustained:
            break
        best = step
    return best


@dataclass(frozen=True)
class IdleLatency:
    """Median over repeated requests to an otherwise idle service, in ms."""

    predict_1000: float
    explain_one: float


def idle_latency(url: str, repeats: int = 20) -> IdleLatency:
    """On one kept-alive connection, as a real client would (a new one costs ~30 ms here)."""
    records = load_records(limit=1000)
    api_key = os.environ.get("LOADTEST_API_KEY")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        return IdleLatency(
            _median_ms(partial(_post, client, "predict", records) for _ in range(repeats)),
            _median_ms(partial(_post, client, "explain", records[:1]) for _ in range(repeats)),
        )


def _post(client: httpx.Client, api: str, customers: list[dict[str, object]]) -> None:
    response = client.post(f"/{api}", json={"customers": customers})
    assert response.status_code == 200 and len(response.json()) == len(customers)


@dataclass(frozen=True)
class Offline:
    rows_per_second: float  # scored in-process in batches of 1,000
    predict_one_ms: float  # median of single-row calls
    explain_one_ms: float  # median of single-customer explanations (top 3 reasons)


def offline(model_uri: str) -> Offline:
    import mlflow
    import pandas as pd

    model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    records = pd.DataFrame(load_records(limit=5000))
    batches = [records.iloc[i : i + 1000] for i in range(0, len(records), 1000)]
    started = time.perf_counter()
    for _ in range(5):
        for batch in batches:
            model.churn_probability(batch)
    rows_per_second = 5 * len(records) / (time.perf_counter() - started)

    one_at_a_time = [records.iloc[[row]] for row in range(500)]
    return Offline(
        rows_per_second,
        _median_ms(partial(model.churn_probability, one) for one in one_at_a_time),
        _median_ms(partial(model.explain, one) for one in one_at_a_time),
    )


def _median_ms(calls: Iterable[Callable[[], object]]) -> float:
    """The median duration of `calls`, each timed on its own, in ms."""
    timings = []
    for call in calls:
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=15, help="measured seconds per step")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=3300)
    parser.add_argument(
        "--rates",
        default="10,25,50,100,150,200,250,400,550,700,850,1000,1200,1400,1600,1800,2000,2200,2400",
    )
    parser.add_argument(
        "--targets",
        default="bentoml,bentoml-api,mlflow",
        help="Which servers to measure (bentoml, bentoml-api, mlflow).",
    )
    parser.add_argument("--no-offline", action="store_true", help="Skip the offline ceiling.")
    parser.add_argument(
        "--overload-rate",
        type=int,
        help="Offer this rate in the overload run (default: twice our best sustained rate).",
    )
    parser.add_argument("--no-overload", action="store_true", help="Skip the overload run.")
    args = parser.parse_args()
    settings = ServingSettings()
    os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    model_uri = f"models:/{settings.model_name}@{settings.model_alias}"
    rates = [int(r) for r in args.rates.split(",")]
    os.environ["CHURN_WORKERS"] = str(args.workers)

    results: dict[str, list[Step | None]] = {}
    idle: list[IdleLatency] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for run in range(1, args.runs + 1):
            chosen = [
                t
                for t in targets(model_uri, args.workers, args.port)
                if t.key in args.targets.split(",")
            ]
            for target in chosen:
                print(f"run {run}: {target.name}", flush=True)
                with running(target, args.port, folder / f"{target.key}.log") as url:
                    best = find_max_rate(url, target.api, rates, args.seconds, folder)
                results.setdefault(target.name, []).append(best)
            if "bentoml" in args.targets.split(","):
                # On a fresh service: one huge batch first would teach the batcher to wait.
                ours = targets(model_uri, args.workers, args.port)[0]
                with running(ours, args.port, folder / "idle.log") as url:
                    idle.append(idle_latency(url))
        overloaded = None
        ours_best = [s.rate for s in results.get(OURS, []) if s is not None]
        overload_rate = args.overload_rate or 2 * (statistics.median(ours_best) if ours_best else 0)
        if not args.no_overload and overload_rate:
            print(f"overload: {overload_rate:.0f} requests/s offered", flush=True)
            ours = targets(model_uri, args.workers, args.port)[0]
            with running(ours, args.port, folder / "overload.log") as url:
                overloaded = overload.measure(url, int(overload_rate), args.seconds, folder)
    in_process = None if args.no_offline else offline(model_uri)
    print_table(results, args, idle, in_process, overloaded)


def print_table(
    results: dict[str, list[Step | None]],
    args: argparse.Namespace,
    idle: list[IdleLatency],
    in_process: Offline | None,
    overloaded: overload.Overload | None,
) -> None:
    def median_step(steps: list[Step | None]) -> Step | None:
        """A run that sustained no rate at all ranks lowest."""
        ranked = sorted(steps, key=lambda s: -1 if s is None else s.rate)
        return ranked[len(ranked) // 2]

    print()
    print(
        f"Maximum sustainable rate (0 failures, p99 ≤ {MAX_P99_MS:g} ms), "
        f"{args.workers} workers each, median of {args.runs} run(s):"
    )
    print()
    medians = {name: median_step(steps) for name, steps in results.items()}
    baseline_name = "mlflow models serve"
    lowest_rate = int(args.rates.split(",")[0])
    print("| server | max sustainable req/s | p50 ms | p99 ms | x mlflow models serve |")
    print("|---|---|---|---|---|")
    for name, step in medians.items():
        if step is None:
            print(f"| {name} | below {lowest_rate} | - | - | - |")
            continue
        s = step.summary
        ratio = "-"
        if name != baseline_name and baseline_name in medians:
            baseline = medians[baseline_name]
            if baseline is None:  # it sustained not even the lowest rate
                ratio = f"> {s.requests_per_second / lowest_rate:.0f}"
            else:
                ratio = f"{s.requests_per_second / baseline.summary.requests_per_second:.1f}"
        achieved = f"{s.requests_per_second:.0f} (offered {step.rate})"
        print(f"| {name} | {achieved} | {s.p50_ms:g} | {s.p99_ms:g} | {ratio} |")
    if idle:
        big = statistics.median(i.predict_1000 for i in idle)
        explain = statistics.median(i.explain_one for i in idle)
        print(f"idle service: one request of 1,000 customers {big:.0f} ms; ", end="")
        print(f"/explain for one customer {explain:.1f} ms")
    if overloaded:
        o = overloaded
        recovery = "never, while probed" if o.recovery_s is None else f"{o.recovery_s:.1f} s"
        print(
            f"overload at {o.offered} requests/s offered: {o.answered_per_second:.0f}/s answered "
            f"right (p99 {o.p99_ms:g} ms), {o.shed} shed with the documented 503, {o.wrong} "
            f"wrong or failed otherwise; single requests under 100 ms again {recovery} "
            "after the load stopped (an upper bound)"
        )
    if in_process:
        print(
            f"offline, in-process: {in_process.rows_per_second:,.0f} rows/s in batches of 1,000; "
            f"one row {in_process.predict_one_ms:.2f} ms; "
            f"explaining one customer {in_process.explain_one_ms:.2f} ms"
        )
    print(json.dumps({name: [s and s.rate for s in steps] for name, steps in results.items()}))


if __name__ == "__main__":
    main()
