"""make chaos: every fault of chaos/faults.py in turn, under steady /predict traffic, against the
production set-up of chaos/stack.py; prints the table and fails if any fault broke a promise.

Needs PostgreSQL and Redis (`make services`); trains its own two small versions."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from chaos.faults import faults
from chaos.load import SteadyLoad
from chaos.report import table
from chaos.stack import stack
from chaos.suite import run_fault
from loadtests.servers import free_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument(
        "--data", type=Path, required=True, help="the customer table to train on and send"
    )
    parser.add_argument("--rate", type=float, default=50, help="requests a second")
    parser.add_argument("--per-request", type=int, default=5, help="customers in each request")
    parser.add_argument("--outage", type=float, default=10, help="seconds each fault lasts")
    parser.add_argument("--only", action="append", default=[], help="run only faults naming this")
    parser.add_argument(
        "--folder", type=Path, default=Path("reports/chaos"), help="logs and stores (emptied first)"
    )
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    postgres = os.environ.get(
        "CHURN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis = os.environ.get("CHURN_TEST_REDIS", "redis://127.0.0.1:6379/0")
    chosen = [f for f in faults() if not args.only or any(o in f.name for o in args.only)]
    outcomes = []
    shutil.rmtree(args.folder, ignore_errors=True)
    with stack(args.data, args.folder, postgres, redis, free_port()) as system:
        load = SteadyLoad(system.url, system.key, system.records, args.rate, args.per_request)
        for number, fault in enumerate(chosen):
            outcome = run_fault(
                system, load, fault, args.outage, f"chaos{int(time.time())}x{number}"
            )
            print(
                f"{fault.name}: {'; '.join(outcome.failures) or 'ok'}",
                file=sys.stderr,
                flush=True,
            )
            outcomes.append(outcome)
    report = table(outcomes)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n")
    return 1 if any(outcome.failures for outcome in outcomes) else 0
