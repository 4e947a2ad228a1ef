"""make bench: this service, bare and in production, against `mlflow models serve`, on equal terms.

Every server serves the same registered model version with 2 workers, gets the same Locust file
and the same users, and shares the 2 cores with Locust:
- production: this service with API keys required and the history recorded to PostgreSQL;
- bare: this service with keys and history off;
- `mlflow models serve`.

Each is measured two ways (loadtests/ladder.py):
1. a closed loop: 64 users sending single-customer requests back to back, for the throughput
   when latency is not limited and the server's CPU per answered request;
2. a ladder of offered rates (the load test's mix), for the throughput at each p99 target:
   the highest achieved rate of a step with 0 failures and ≥ 97% of its offered rate achieved
   whose p99 is within the target.
Production's /explain gets both too, with single customers. Then: an overload run, an idle
service, and scoring in-process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from loadtests import overload
from loadtests.bench_report import Measured, print_report
from loadtests.customers import load_records
from loadtests.ladder import Load, best_within, climb, closed_loop
from loadtests.servers import Target, bentoml_serve, create_key, mlflow_serve, started
from serving.settings import ServingSettings

P99_TARGETS_MS = (50.0, 100.0, 500.0)
PRODUCTION = "this service, production (CatBoost, keys required, history on PostgreSQL)"
BARE = "this service, bare (keys and history off)"
BASELINE = "`mlflow models serve`"
DEFAULT_RATES = "25,50,100,200,300,400,600,800,1000,1200,1400,1700,2000,2400"


@dataclass(frozen=True)
class Contender:
    target: Target
    loads: list[tuple[str, Load]]  # (row name, what Locust sends)


def contenders(args: argparse.Namespace, model_uri: str, api_key: str) -> list[Contender]:
    serve = bentoml_serve(args.port)
    bare_env = {"CHURN_AUTH": "off", "CHURN_HISTORY_ENABLED": "false"}
    production_env = {
        "CHURN_AUTH": "required",
        "CHURN_AUTH_DB": args.auth_db,
        "CHURN_HISTORY_URL": args.history_url,
    }
    predict, keyed = Load("bentoml"), Load("bentoml", api_key=api_key)
    explain = Load("bentoml", "explain", single_customers=True, api_key=api_key)
    mlflow = Target(
        BASELINE, "mlflow", "mlflow", mlflow_serve(model_uri, args.workers, args.port), "/ping"
    )
    return [
        Contender(
            Target(PRODUCTION, "production", "bentoml", serve, "/readyz", production_env),
            [(PRODUCTION, keyed), ("same, /explain for one customer", explain)],
        ),
        Contender(Target(BARE, "bare", "bentoml", serve, "/readyz", bare_env), [(BARE, predict)]),
        Contender(mlflow, [(BASELINE, Load("mlflow"))]),
    ]  # fmt: skip


def measure(contender: Contender, args: argparse.Namespace, folder: Path) -> list[Measured]:
    rates = [int(rate) for rate in args.rates.split(",")]
    measured = []
    with started(contender.target, args.port, folder / f"{contender.target.key}.log") as server:
        for name, load in contender.loads:
            print(f"  {name}: closed loop, {args.users} users", flush=True)
            closed = closed_loop(server, load, args.users, args.closed_seconds, folder)
            s = closed.summary
            print(
                f"    {s.requests_per_second:.1f}/s, failures {s.failures}, p99 {s.p99_ms:g} ms, "
                f"{closed.cpu_us_per_request:.0f} µs CPU per request",
                flush=True,
            )
            print(f"  {name}: offered rates", flush=True)
            steps = climb(server.url, load, rates, args.seconds, folder, max(P99_TARGETS_MS))
            within = {target: best_within(steps, target) for target in P99_TARGETS_MS}
            measured.append(Measured(name, closed, within))
    return measured


@dataclass(frozen=True)
class IdleLatency:
    """Median over repeated requests to an otherwise idle service, in ms."""

    predict_1000: float
    explain_one: float


def idle_latency(url: str, api_key: str, repeats: int = 20) -> IdleLatency:
    """On one kept-alive connection, as a real client would (a new one costs ~30 ms here)."""
    records = load_records(limit=1000)
    headers = {"Authorization": f"Bearer {api_key}"}
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
    started_at = time.perf_counter()
    for _ in range(5):
        for batch in batches:
            model.churn_probability(batch)
    rows_per_second = 5 * len(records) / (time.perf_counter() - started_at)

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
        started_at = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started_at) * 1000)
    return statistics.median(timings)


def bench_key(auth_db: str) -> str:
    """A key for the production server, with a rate far above any step's."""
    options = ("--rate", "1000000/second", "--replace")
    return create_key({"CHURN_AUTH_DB": auth_db}, "predict,explain", *options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per step")
    parser.add_argument("--closed-seconds", type=int, default=20)
    parser.add_argument("--users", type=int, default=64, help="closed-loop users")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=3300)
    parser.add_argument("--rates", default=DEFAULT_RATES)
    parser.add_argument(
        "--targets",
        default="production,bare,bentoml-api,mlflow",
        help="Which servers to measure (production, bare, bentoml-api, mlflow).",
    )
    parser.add_argument("--auth-db", required=True, help="The production server's key store.")
    parser.add_argument("--history-url", required=True, help="Its history (PostgreSQL).")
    parser.add_argument("--no-extras", action="store_true", help="Skip overload, idle, offline.")
    args = parser.parse_args()
    settings = ServingSettings()
    os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    os.environ["CHURN_WORKERS"] = str(args.workers)
    model_uri = f"models:/{settings.model_name}@{settings.model_alias}"
    api_key = bench_key(args.auth_db)
    chosen = [
        c for c in contenders(args, model_uri, api_key) if c.target.key in args.targets.split(",")
    ]
    runs: list[list[Measured]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for run in range(1, args.runs + 1):
            measured = []
            for contender in chosen:
                print(f"run {run}: {contender.target.name}", flush=True)
                measured.extend(measure(contender, args, folder))
            runs.append(measured)
        extras = None if args.no_extras else _extras(args, model_uri, api_key, runs, folder)
    print_report(runs, P99_TARGETS_MS, BASELINE, args.workers, extras)


def _extras(
    args: argparse.Namespace, model_uri: str, api_key: str, runs: list[list[Measured]], folder: Path
) -> list[str]:
    by_name = {c.target.key: c.target for c in contenders(args, model_uri, api_key)}
    lines = []
    # On a fresh service: one huge batch first would teach the batcher to wait.
    with started(by_name["production"], args.port, folder / "idle.log") as server:
        idle = idle_latency(server.url, api_key)
    lines.append(
        f"Idle production service: one request of 1,000 customers {idle.predict_1000:.0f} ms; "
        f"/explain for one customer {idle.explain_one:.1f} ms."
    )
    bare_best = [m.within[max(P99_TARGETS_MS)] for run in runs for m in run if m.name == BARE]
    rates = [step.rate for step in bare_best if step is not None]
    if rates:
        rate = 2 * int(statistics.median(rates))
        print(f"overload: {rate} requests/s offered to the bare service", flush=True)
        with started(by_name["bare"], args.port, folder / "overload.log") as server:
            o = overload.measure(server.url, rate, args.seconds, folder)
        recovery = "never, while probed" if o.recovery_s is None else f"{o.recovery_s:.1f} s"
        lines.append(
            f"Overload of the bare service at {o.offered} requests/s offered: "
            f"{o.answered_per_second:.0f}/s answered right (p99 {o.p99_ms:g} ms), {o.shed} shed "
            f"with the documented 503, {o.wrong} wrong or failed otherwise; single requests "
            f"under 100 ms again {recovery} after the load stopped (an upper bound)."
        )
    scored = offline(model_uri)
    lines.append(
        f"In-process: {scored.rows_per_second:,.0f} rows/s in batches of 1,000; one row "
        f"{scored.predict_one_ms:.2f} ms; explaining one customer {scored.explain_one_ms:.2f} ms."
    )
    return lines


if __name__ == "__main__":
    main()
