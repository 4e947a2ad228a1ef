"""`python -m streaming` against the real broker and PostgreSQL: 10,000 events with 100 bad
ones, the consumer SIGKILLed mid-run and started again, and every event accounted for."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from churn.assignment import in_share
from loadtests.metrics_page import series
from loadtests.servers import free_port
from monitoring.dashboard import STREAM_METRIC, queries
from tests.integration.conftest import (
    BIN,
    KAFKA_BOOTSTRAP,
    ROOT,
    Champion,
    fresh_postgres_database,
    stop,
)

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.postgres]
EVENTS = 10_000
BIG = 10 * 1024 * 1024
PARTITIONS = 3


@dataclass(frozen=True)
class Topics:
    input: str
    output: str
    dead_letters: str


def bad_records(good: dict[str, Any]) -> list[tuple[bytes, str]]:
    """What /predict would refuse, with a word the dead letter's reason must hold."""
    missing = {name: value for name, value in good.items() if name != "tenure"}
    return [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not an array"),
        (b'"a string"', "not a string"),
        (json.dumps(missing).encode(), "tenure"),
        (json.dumps({**good, "tenure": "twelve"}).encode(), "tenure"),
        (json.dumps({**good, "MonthlyCharges": float("nan")}).encode(), "MonthlyCharges"),
        (json.dumps({**good, "MonthlyCharges": "Infinity"}).encode(), "MonthlyCharges"),
        (b"\xff\xfe not utf-8", "not JSON"),
    ]


def events(customers: pd.DataFrame) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """EVENTS records as (event id, value), and the bad ones' ids with the word their reason
    must hold. One in a hundred is bad; every tenth good one has an unknown extra field, which
    /predict ignores, so it is scored."""
    records = json.loads(customers.drop(columns=["Churn"]).to_json(orient="records"))
    kinds = bad_records(records[0])
    made: list[tuple[str, bytes]] = []
    bad: dict[str, str] = {}
    for number in range(EVENTS):
        event_id = f"ev-{number:05d}"
        if number % 100 == 50:
            value, word = kinds[(number // 100) % len(kinds)]
            if number == 50:
                value, word = b"{" + b" " * BIG + b"}", "the limit is"
            made.append((event_id, value))
            bad[event_id] = word
            continue
        record = dict(records[number % len(records)])
        if number % 10 == 3:
            record["favourite_colour"] = "teal"
        made.append((event_id, json.dumps(record).encode()))
    return made, bad


async def create_topics(topics: Topics) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
    await admin.start()
    try:
        big = {"max.message.bytes": str(BIG + 1024 * 1024)}
        await admin.create_topics(
            [
                NewTopic(topics.input, PARTITIONS, 1, topic_configs=big),
                NewTopic(topics.output, PARTITIONS, 1),
                NewTopic(topics.dead_letters, 1, 1),
            ]
        )
    finally:
        await admin.close()


async def delete_topics(topics: Topics) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
    await admin.start()
    try:
        await admin.delete_topics([topics.input, topics.output, topics.dead_letters])
    finally:
        await admin.close()


async def produce(topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA_BOOTSTRAP,
        acks="all",
        enable_idempotence=True,
        max_request_size=BIG + 1024 * 1024,
    )
    await producer.start()
    try:
        sent = [
            await producer.send(
                topic, value, key=event_id.encode(), headers=[("event-id", event_id.encode())]
            )
            for event_id, value in records
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def read_all(topic: str, expected: int) -> list[Any]:
    """Every record on `topic`, once at least `expected` have come."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=KAFKA_BOOTSTRAP, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=1000)
            for batch in fetched.values():
                records += batch
            if len(records) >= expected and not fetched:
                break
        return records
    finally:
        await consumer.stop()


@pytest.fixture(scope="module")
def topics() -> Iterator[Topics]:
    name = uuid.uuid4().hex[:8]
    made = Topics(f"customers-{name}", f"decisions-{name}", f"dead-letters-{name}")
    asyncio.run(create_topics(made))
    try:
        yield made
    finally:
        asyncio.run(delete_topics(made))


@pytest.fixture(scope="module")
def history_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def start_consumer(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [str(BIN / "python"), "-m", "streaming"], cwd=ROOT, env=env, stdout=output,
            stderr=output,
        )  # fmt: skip


def stream_rows(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        query = "SELECT count(*) FROM predictions WHERE source = 'stream'"
        try:
            return int(connection.execute(sa.text(query)).scalar_one())
        except sa.exc.ProgrammingError:  # the consumer has not made the table yet
            return 0


def wait_for_rows(
    engine: sa.Engine, count: int, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 180
    while stream_rows(engine) < count:
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.02)


def lag(metrics_url: str) -> dict[str, float]:
    text = httpx.get(metrics_url, timeout=5).text
    return {
        str(sorted(labels.items())): value
        for labels, value in series(text, "churn_stream_consumer_lag")
    }


def test_every_event_is_recorded_once_published_and_bad_ones_dead_lettered_across_a_kill(
    champion: Champion,
    customers: pd.DataFrame,
    topics: Topics,
    history_url: str,
    tmp_path: Path,
) -> None:
    records, bad = events(customers)
    good = {event_id for event_id, _ in records} - bad.keys()
    metrics_port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": champion.tracking_uri,
        "CHURN_HISTORY_URL": history_url,
        "CHURN_HISTORY_FEATURE_SAMPLE": "0.1",
        "CHURN_STREAM_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
        "CHURN_STREAM_GROUP": f"group-{topics.input}",
        "CHURN_STREAM_INPUT_TOPIC": topics.input,
        "CHURN_STREAM_OUTPUT_TOPIC": topics.output,
        "CHURN_STREAM_DEAD_LETTER_TOPIC": topics.dead_letters,
        "CHURN_STREAM_MAX_BATCH": "250",
        "CHURN_STREAM_METRICS_PORT": str(metrics_port),
        "CHURN_EXPERIMENT_NAME": "stream-trial",
        "CHURN_EXPERIMENT_CONTROL_SHARE": "0.3",
    }
    log = tmp_path / "stream.log"
    asyncio.run(produce(topics.input, records))
    engine = sa.create_engine(history_url.replace("postgresql://", "postgresql+psycopg://"))

    first = start_consumer(env, log)
    try:
        wait_for_rows(engine, 2000, first, log)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert stream_rows(engine) < len(good), "the consumer finished before it was killed"

    second = start_consumer(env, log)
    try:
        wait_for_rows(engine, len(good), second, log)
        deadline = time.monotonic() + 30
        while (lags := lag(f"http://127.0.0.1:{metrics_port}/metrics")) and any(lags.values()):
            assert time.monotonic() < deadline, lags
            time.sleep(0.5)
        assert len(lags) == PARTITIONS and set(lags.values()) == {0.0}
        exported = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        for query in (query for query in queries() if STREAM_METRIC in query):
            for name in re.findall(r"churn_stream_\w+", query):
                assert f"\n{name}{{" in exported, f"the dashboard's {query} has no {name}"
    finally:
        stop(second)

    with engine.connect() as connection:
        recorded = Counter(
            row.request_id
            for row in connection.execute(
                sa.text("SELECT request_id FROM predictions WHERE source = 'stream'")
            )
        )
    assert set(recorded) == good
    assert max(recorded.values()) == 1

    published = asyncio.run(read_all(topics.output, len(good)))
    published_ids = {dict(record.headers)["event-id"].decode() for record in published}
    assert published_ids == good
    decision = json.loads(published[0].value)
    assert {"churn_probability", "risk_tier", "action", "model_version", "event_id"} <= set(
        decision
    )
    assert dict(published[0].headers)["model-version"].decode() == champion.version
    # The experiment's groups are those of every other path: the same hash of the same id.
    grouped = [d for d in map(json.loads, (r.value for r in published)) if d["treatment"]]
    held_back = in_share("stream-trial", [d["customer_id"] for d in grouped], 0.3)
    assert [d["treatment"] == "control" for d in grouped] == held_back and any(held_back)
    assert all(d["action"] == "no action" for d in grouped if d["treatment"] == "control")

    dead = asyncio.run(read_all(topics.dead_letters, len(bad)))
    reasons = {
        dict(record.headers)["event-id"].decode(): dict(record.headers)["error"].decode()
        for record in dead
    }
    assert reasons.keys() == bad.keys()
    for event_id, word in bad.items():
        assert word in reasons[event_id], (event_id, reasons[event_id])
    originals = dict(records)
    small = next(r for r in dead if dict(r.headers)["event-id"].decode() != "ev-00050")
    assert small.value == originals[dict(small.headers)["event-id"].decode()]
