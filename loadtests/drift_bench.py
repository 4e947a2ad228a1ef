"""make bench-drift: one drift refresh over a 24 h window of 2,000 requests/s, on PostgreSQL.

The writer counts rows into the served version's reference bins as it writes them (5-minute
buckets in `drift_counts`), so a refresh reads counts, not rows. This fills a database of its
own with a day of counts as 2,000 single-customer requests/s (172.8 million predictions, 5%
of them with features: 8.64 million) would leave them, by running the writer's own counter on
generated rows, and times what the service's monitor does every minute: read the window, sum
it, compute every PSI. It also measures what counting costs the writer per row.

Fails if the slowest refresh is over --max-seconds (10).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from churn.features import FeatureSpec
from churn.reference import ReferenceProfile
from history.customer_ids import CustomerIds
from history.database import engine_for
from history.drift_counts import BUCKET_SECONDS, DriftCounter
from history.records import ScoredBatch, rows_of
from history.schema import migrate
from monitoring.recorded_drift import recorded_drift

DATABASE = "churn_drift_bench"
RATE = 2000
SAMPLE = 0.05


def _model_description() -> dict[str, object]:
    import bentoml

    from registry.settings import RegistrySettings
    from serving.model.champion import model_description

    model = bentoml.models.get(f"{RegistrySettings().model_name}:latest")
    return model_description(model)


def _rows(spec: FeatureSpec, sample: pd.DataFrame, at: datetime, count: int) -> list[tuple]:  # type: ignore[type-arg]
    records = sample.sample(count, replace=True, random_state=int(at.timestamp())).to_dict(
        "records"
    )
    deciles = np.random.default_rng(int(at.timestamp())).integers(1, 11, count)
    predictions = [
        {"customer_id": None, "model_version": "1", "churn_probability": 0.5, "churn": True,
         "risk_tier": "high", "decile": int(d), "segment": "s", "action": "a",
         "expected_value": 1.0}
        for d in deciles
    ]  # fmt: skip
    batch = ScoredBatch(at, "api", "churn", predictions, records)  # type: ignore[arg-type]
    return rows_of(batch, CustomerIds(), feature_sample=1.0)


def fill(url: str, counter: DriftCounter, spec: FeatureSpec, customers: pd.DataFrame) -> int:
    """A day of counts: per bucket, the counter's counts of a sample of generated rows, scaled
    to the bucket's volume. Returns the count rows written."""
    per_bucket = RATE * BUCKET_SECONDS
    sampled = int(per_bucket * SAMPLE)
    end = datetime.now(UTC)
    start = end - timedelta(hours=24)
    written = 0
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        moment = start
        while moment < end:
            rows = _rows(spec, customers, moment, 2000)
            scale = {True: per_bucket / len(rows), False: sampled / len(rows)}
            counts = [
                (c.bucket, c.model_version, c.feature, c.bin,
                 round(c.rows * scale[c.feature == "__prediction__"]))
                for c in counter.count(rows)
            ]  # fmt: skip
            with cursor.copy(
                "COPY drift_counts (bucket, model_version, feature, bin, rows) FROM STDIN"
            ) as copy:
                for count in counts:
                    copy.write_row(count)
            written += len(counts)
            moment += timedelta(seconds=BUCKET_SECONDS)
        connection.commit()
    return written


def counting_cost(counter: DriftCounter, spec: FeatureSpec, customers: pd.DataFrame) -> float:
    """Microseconds of the writer's thread per recorded row, at 5% sampled features."""
    now = datetime.now(UTC)
    rows = _rows(spec, customers, now, 20_000)
    thinned = [row if n % 20 == 0 else (*row[:-1], None) for n, row in enumerate(rows)]
    started = time.perf_counter()
    for _ in range(5):
        counter.count(thinned)
    return (time.perf_counter() - started) / (5 * len(thinned)) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--data", default="data/customers.csv")
    parser.add_argument("--refreshes", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("reports/bench-drift.json"))
    args = parser.parse_args()

    description = _model_description()
    spec = FeatureSpec.from_dict(description["feature_spec"])  # type: ignore[arg-type]
    reference = ReferenceProfile.from_dict(description["reference"])  # type: ignore[arg-type]
    counter = DriftCounter(spec, reference, "1")
    customers = pd.read_csv(args.data, dtype={"customerID": str}).drop(columns=["Churn"])
    url = args.admin_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    try:
        engine = engine_for(url)
        migrate(engine)
        started = time.perf_counter()
        written = fill(url, counter, spec, customers)
        print(f"A day of counts for {RATE:,} requests/s: {written:,} rows in drift_counts, "
              f"made in {time.perf_counter() - started:.0f} s")  # fmt: skip
        seconds = []
        for _ in range(args.refreshes):
            now = datetime.now(UTC)
            began = time.perf_counter()
            report = recorded_drift(engine, reference, "1", now - timedelta(hours=24), now)
            seconds.append(time.perf_counter() - began)
        cost = counting_cost(counter, spec, customers)
        engine.dispose()
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    result = {
        "window_predictions": report.prediction.rows,
        "window_sampled_rows": max(d.rows for d in report.features),
        "refresh_seconds_median": statistics.median(seconds),
        "refresh_seconds_max": max(seconds),
        "counting_us_per_row": cost,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(
        f"Refresh over 24 h ({result['window_predictions']:,} predictions, "
        f"{result['window_sampled_rows']:,} with features): median "
        f"{result['refresh_seconds_median'] * 1000:.0f} ms, slowest "
        f"{result['refresh_seconds_max'] * 1000:.0f} ms over {args.refreshes} refreshes"
    )
    print(f"Counting in the writer's thread: {cost:.1f} µs per recorded row (5% with features)")
    if result["refresh_seconds_max"] > args.max_seconds:
        print(f"FAIL: a refresh took over {args.max_seconds} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
