"""make bench-challenger: what a challenger costs the production service, in CPU per request
and in p99, with no challenger, in shadow at share 1.0, and as a 5% canary.

The production profile (CatBoost, keys required, history on PostgreSQL, 2 workers) serves the
champion; the challenger alias points at the champion's own version, so the challenger costs
what a second CatBoost of the same size costs. Each set-up gets a closed loop of --users users
(CPU per answered request) and then --rate requests/s offered (p99), interleaved over --runs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from loadtests.bench import bench_key
from loadtests.ladder import Load, closed_loop, offer
from loadtests.metrics_page import metric_total
from loadtests.servers import Target, bentoml_serve, started
from registry.client import champion, connect, set_alias
from serving.settings import ServingSettings

SET_UPS = {
    "no challenger": {},
    "shadow, share 1.0": {"CHURN_CHALLENGER_MODE": "shadow", "CHURN_CHALLENGER_SHARE": "1"},
    "canary, share 0.05": {"CHURN_CHALLENGER_MODE": "canary", "CHURN_CHALLENGER_SHARE": "0.05"},
}


def _wait_for_challenger(url: str, workers: int = 2, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while metric_total(url, "churn_challenger_reload_total", result="swapped") < workers:
        if time.monotonic() > deadline:
            raise SystemExit(f"The workers at {url} did not load the challenger")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--closed-seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=400)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--port", type=int, default=3300)
    parser.add_argument("--auth-db", required=True)
    parser.add_argument("--history-url", required=True)
    args = parser.parse_args()
    settings = ServingSettings()
    os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    client = connect(settings)
    current = champion(client, settings.model_name, settings.model_alias)
    if current is None:
        raise SystemExit("No champion: run make champion first.")
    set_alias(client, settings.model_name, "bench-challenger", str(current.version))
    api_key = bench_key(args.auth_db)
    load = Load("bentoml", single_customers=True, api_key=api_key)
    base = {
        "CHURN_AUTH": "required",
        "CHURN_AUTH_DB": args.auth_db,
        "CHURN_HISTORY_URL": args.history_url,
        "CHURN_WORKERS": "2",
        "CHURN_CHALLENGER_ALIAS": "bench-challenger",
        "CHURN_FOLLOW_STAGGER_S": "0",
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for run in range(1, args.runs + 1):
            for name, extra in SET_UPS.items():
                env = {**base, **extra}
                if not extra:
                    env.pop("CHURN_CHALLENGER_ALIAS")
                target = Target(name, "c", "bentoml", bentoml_serve(args.port), "/readyz", env)
                with started(target, args.port, folder / "serve.log") as server:
                    if extra:
                        _wait_for_challenger(server.url)
                    closed = closed_loop(server, load, args.users, args.closed_seconds, folder)
                    offered = offer(server.url, load, args.rate, args.seconds, folder)
                    dropped = metric_total(server.url, "churn_challenger_dropped_total")
                    scored = metric_total(server.url, "churn_challenger_predictions_total")
                print(
                    f"run {run}, {name}: {closed.summary.requests_per_second:.0f}/s closed, "
                    f"{closed.cpu_us_per_request:.0f} µs CPU/request; at {args.rate}/s "
                    f"p99 {offered.p99_ms:g} ms, failures {offered.failures}; challenger "
                    f"scored {scored:,.0f}, dropped {dropped:,.0f}",
                    flush=True,
                )
                rows.append((run, name, closed, offered, scored, dropped))
    print(f"\n| run | set-up | closed loop, {args.users} users: req/s | CPU µs/request | "
          f"p99 at {args.rate} req/s | challenger scored / dropped |")  # fmt: skip
    print("|---|---|---:|---:|---:|---|")
    for run, name, closed, offered, scored, dropped in rows:
        print(
            f"| {run} | {name} | {closed.summary.requests_per_second:,.0f} | "
            f"{closed.cpu_us_per_request:.0f} | {offered.p99_ms:g} ms | "
            f"{scored:,.0f} / {dropped:,.0f} |"
        )


if __name__ == "__main__":
    main()
