"""make bench-history: the prediction history on PostgreSQL, measured.

1. The writer on its own: rows/s it turns from scored batches into rows and COPYs in.
2. A table of `--rows` predictions (default 10 million) over `--days` daily partitions, made
   in the database with generate_series, for `--customers` customers.
3. GET /customers/{id}/history through `bentoml serve`, one request at a time for random
   customers: p50 and p99. Fails if p99 is over `--max-p99-ms` (20).

Everything runs in a database of its own, dropped at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from history.customer_ids import CustomerIds
from history.database import engine_for
from history.records import ScoredBatch
from history.schema import create_partitions, migrate
from history.sinks import PostgresSink
from history.writer import HistoryWriter
from loadtests.servers import Target, bentoml_serve, running

DATABASE = "churn_history_bench"
FILL = """
INSERT INTO predictions (scored_at, request_id, client, source, customer_id, model_name,
    model_version, churn_probability, churn, risk_tier, decile, segment, action, expected_value)
SELECT %(start)s::timestamptz + (n::float8 / %(rows)s) * %(seconds)s * interval '1 second',
       md5(n::text), 'bench', 'api', 'c' || (n %% %(customers)s), 'churn', '1',
       p, p >= 0.5, CASE WHEN p >= 0.5 THEN 'high' ELSE 'low' END, 1 + (n %% 10),
       'segment ' || (n %% 4), CASE WHEN p >= 0.5 THEN 'call' ELSE 'no action' END, p * 100
FROM (SELECT n, random() AS p FROM generate_series(%(first)s, %(last)s) AS n) generated
"""


def writer_rows_per_second(url: str, rows: int) -> float:
    """Rows/s through HistoryWriter (rows made from scored batches, then COPY), one thread."""
    prediction = {
        "churn_probability": 0.42, "churn": True, "risk_tier": "high", "decile": 2,
        "segment": "long-tenure fibre", "action": "call", "expected_value": 12.5,
        "model_version": "1",
    }  # fmt: skip
    now = datetime.now(UTC)
    batches = [
        ScoredBatch(
            now,
            "api",
            "churn",
            [{**prediction, "customer_id": f"w{n}-{i}"} for i in range(4)],
            [{"tenure": 12, "Contract": "Month-to-month"}] * 4,
            [f"r{n}"] * 4,
            ["bench"] * 4,
        )
        for n in range(rows // 4)
    ]
    writer = HistoryWriter(
        PostgresSink(engine_for(url).url), CustomerIds(), 0.05, buffer_rows=rows, batch_rows=20_000
    )
    for batch in batches:
        writer.record(batch)
    started = time.perf_counter()
    assert writer.flush(), "the writer could not write"
    seconds = time.perf_counter() - started
    writer.close()
    return len(batches) * 4 / seconds


def fill(url: str, rows: int, customers: int, days: int) -> float:
    """Seconds to generate `rows` predictions spread evenly over the last `days` days."""
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=days - 1)
    started = time.perf_counter()
    with psycopg.connect(url) as connection:
        create_partitions(connection, [(start + timedelta(days=d)).date() for d in range(days)])
        chunk = 1_000_000
        for first in range(1, rows + 1, chunk):
            params = {
                "start": start, "rows": rows, "seconds": days * 86_400 - 1,
                "customers": customers, "first": first, "last": min(rows, first + chunk - 1),
            }  # fmt: skip
            connection.execute(FILL, params)
            connection.commit()
            print(f"  {min(rows, first + chunk - 1):,} rows", flush=True)
        connection.execute("ANALYZE predictions")
    return time.perf_counter() - started


def lookups(url: str, service_url: str, customers: int, count: int) -> list[float]:
    latencies = []
    rng = random.Random(7)
    with httpx.Client(base_url=service_url, timeout=10) as client:
        for index in range(count + count // 10):
            customer = f"c{rng.randrange(customers)}"
            started = time.perf_counter()
            response = client.get(f"/customers/{customer}/history")
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200 and response.json()["scores"], response.text
            if index >= count // 10:  # the first tenth warms the caches
                latencies.append(elapsed)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--writer-rows", type=int, default=400_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--max-p99-ms", type=float, default=20.0)
    parser.add_argument("--port", type=int, default=3400)
    parser.add_argument("--out", type=Path, default=Path("reports/bench-history.json"))
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    args = parser.parse_args()
    url = args.admin_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    try:
        migrate(engine_for(url))
        rate = writer_rows_per_second(url, args.writer_rows)
        print(f"Writer on its own: {rate:,.0f} rows/s ({args.writer_rows:,} rows, one thread)")
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("TRUNCATE predictions")
        print(f"Generating {args.rows:,} predictions for {args.customers:,} customers ...")
        seconds = fill(url, args.rows, args.customers, args.days)
        print(f"Generated in {seconds:.0f} s")
        env = {"CHURN_HISTORY_URL": url}
        target = Target("history", "history", "bentoml", bentoml_serve(args.port), "/readyz", env)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with running(target, args.port, args.out.with_suffix(".log")) as service_url:
            latencies = lookups(url, service_url, args.customers, args.lookups)
        cuts = statistics.quantiles(latencies, n=100)
        p50, p99 = cuts[49], cuts[98]
        result = {
            "writer_rows_per_second": round(rate),
            "rows": args.rows, "customers": args.customers, "days": args.days,
            "lookups": len(latencies), "p50_ms": round(p50, 2), "p99_ms": round(p99, 2),
        }  # fmt: skip
        args.out.write_text(json.dumps(result, indent=2))
        print(
            f"GET /customers/{{id}}/history over {args.rows:,} rows: "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies):,} requests, one at a time)"
        )
        if p99 > args.max_p99_ms:
            print(f"FAIL: p99 {p99:.1f} ms > {args.max_p99_ms:.0f} ms")
            return 1
        return 0
    finally:
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
