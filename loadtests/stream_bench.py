"""make bench-stream: `python -m streaming` against the broker and PostgreSQL, measured.

1. Throughput: `--events` records (customers of `--data`) are in the input topic before the
   consumer starts; it drains them. Events/s is the drain rate, the most it sustains with the
   lag flat; CPU per event is the consumer's user+system CPU over the drain.
2. Latency: `--rate` events/s for `--seconds`, each stamped with its publish time; a reader of
   the output topic takes the time from publish to decision. Fails if p99 is over
   `--max-p99-ms`.

Topics and the history database are the bench's own, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 2


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def admin(
    bootstrap: str, create: list[str] | None = None, drop: list[str] | None = None
) -> None:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await client.start()
    try:
        if create:
            await client.create_topics([NewTopic(name, PARTITIONS, 1) for name in create])
        if drop:
            await client.delete_topics(drop)
    finally:
        await client.close()


async def produce(
    bootstrap: str,
    topic: str,
    records: list[bytes],
    rate: float | None,
    sent_at: dict[str, float] | None = None,
) -> None:
    """Every record, as fast as the broker takes them, or paced at `rate` per second; when each
    was handed to the producer goes into `sent_at`, by event id."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        started = time.monotonic()
        pending = []
        for number, value in enumerate(records):
            if rate is not None:
                due = started + number / rate
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
            event_id = f"{'paced' if rate else 'backlog'}-{number}"
            if sent_at is not None:
                sent_at[event_id] = time.time()
            headers = [("event-id", event_id.encode())]
            pending.append(await producer.send(topic, value, headers=headers))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def latencies(
    bootstrap: str, topic: str, sent_at: dict[str, float], count: int, timeout_s: float
) -> list[float]:
    """Publish-to-decision seconds of the first `count` decisions on `topic`."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="latest")
    await consumer.start()
    seen: list[float] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(seen) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                now = time.time()
                for record in batch:
                    event_id = dict(record.headers)["event-id"].decode()
                    if event_id in sent_at:
                        seen.append(now - sent_at[event_id])
        return seen
    finally:
        await consumer.stop()


def recorded(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        try:
            row = connection.execute("SELECT count(*) FROM predictions").fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return int(row[0]) if row else 0


def start_consumer(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "streaming"], cwd=ROOT, env=env, stdout=output, stderr=output
        )


def wait_for(count: int, database_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    while recorded(database_url) < count:
        if process.poll() is not None:
            raise SystemExit(f"The consumer stopped:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="A customer CSV; its rows are the events.")
    parser.add_argument("--target", default="Churn")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--max-p99-ms", type=float, default=500)
    parser.add_argument("--reports", type=Path, default=ROOT / "reports" / "bench-stream")
    args = parser.parse_args()

    frame = pd.read_csv(args.data).drop(columns=[args.target], errors="ignore")
    customers = [json.dumps(row).encode() for row in json.loads(frame.to_json(orient="records"))]
    name = uuid.uuid4().hex[:8]
    topics = [f"bench-in-{name}", f"bench-out-{name}", f"bench-dead-{name}"]
    database = f"churn_stream_bench_{name}"
    database_url = args.postgres.rsplit("/", 1)[0] + f"/{database}"
    args.reports.mkdir(parents=True, exist_ok=True)
    log = args.reports / "consumer.log"
    log.write_text("")
    env = {
        **os.environ,
        "CHURN_HISTORY_URL": database_url,
        "CHURN_STREAM_BOOTSTRAP_SERVERS": args.bootstrap,
        "CHURN_STREAM_GROUP": f"bench-{name}",
        "CHURN_STREAM_INPUT_TOPIC": topics[0],
        "CHURN_STREAM_OUTPUT_TOPIC": topics[1],
        "CHURN_STREAM_DEAD_LETTER_TOPIC": topics[2],
        "CHURN_STREAM_METRICS_PORT": "0",
    }
    with psycopg.connect(args.postgres, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {database}")
    asyncio.run(admin(args.bootstrap, create=topics))
    try:
        return _measure(args, customers, topics, env, database_url, log)
    finally:
        asyncio.run(admin(args.bootstrap, drop=topics))
        with psycopg.connect(args.postgres, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _measure(
    args: argparse.Namespace,
    customers: list[bytes],
    topics: list[str],
    env: dict[str, str],
    database_url: str,
    log: Path,
) -> int:
    backlog = [customers[n % len(customers)] for n in range(args.events)]
    asyncio.run(produce(args.bootstrap, topics[0], backlog, rate=None))
    consumer = start_consumer(env, log)
    try:
        wait_for(1, database_url, consumer, log)
        started, cpu_started, first = (
            time.monotonic(),
            cpu_seconds(consumer.pid),
            recorded(database_url),
        )
        wait_for(args.events, database_url, consumer, log)
        seconds, cpu = time.monotonic() - started, cpu_seconds(consumer.pid) - cpu_started
        drained = args.events - first
        rate = drained / seconds
        print(f"Throughput: {drained:,} events in {seconds:.1f} s: {rate:,.0f} events/s; "
              f"consumer CPU {cpu:.1f} s, {cpu / drained * 1e6:.0f} µs/event, "
              f"{drained / cpu:,.0f} events/s per core")  # fmt: skip

        count = int(args.rate * args.seconds)
        paced = [customers[n % len(customers)] for n in range(count)]

        async def paced_run() -> list[float]:
            sent_at: dict[str, float] = {}
            reader = asyncio.create_task(
                latencies(args.bootstrap, topics[1], sent_at, count, args.seconds + 60)
            )
            await asyncio.sleep(2)  # the reader joins the topic at its end first
            await produce(args.bootstrap, topics[0], paced, args.rate, sent_at)
            return await reader

        seen = sorted(asyncio.run(paced_run()))
        p50, p99 = (statistics.quantiles(seen, n=100)[q] * 1000 for q in (49, 98))
        print(f"Latency at {args.rate:,.0f} events/s for {args.seconds} s: {len(seen):,} "
              f"decisions, publish to decision p50 {p50:.0f} ms, p99 {p99:.0f} ms")  # fmt: skip
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(30)
    if p99 > args.max_p99_ms:
        print(f"FAIL: p99 {p99:.0f} ms > {args.max_p99_ms:.0f} ms")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
