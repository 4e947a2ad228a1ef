"""Load test for POST /predict: mostly single customers, some batches of 10 to 100.

`LOADTEST_API=mlflow` sends the same customers to `mlflow models serve` (POST /invocations)
instead, for the side-by-side benchmark; `LOADTEST_ENDPOINT=explain` sends them to /explain.
`LOADTEST_BATCH_SHARE=0` sends single customers only.

Every response is checked: status 200, one prediction per customer in order, probabilities in
0..1. A wrong body counts as a failure. The offered rate is fixed by constant-throughput users:
`LOADTEST_RATE` requests/s in total, spread over the users Locust starts.

With `LOADTEST_ANSWERED` set to a path, each request sends its own X-Request-ID and the ids of
the answered requests, with their customer counts, are written there at the end, so that
loadtests/recorded.py can check every one of them is in the prediction history.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment

from loadtests.checks import check
from loadtests.customers import load_records

# The service closes a connection every 100 requests, and gevent's default resolver hands the
# lookup of every new one to a thread: about 6% of Locust's CPU, which the service shares.
gevent.config.resolver = "block"

TARGET_RATE = float(os.environ.get("LOADTEST_RATE", "500"))
USERS = int(os.environ.get("LOADTEST_USERS", "100"))
BATCH_SHARE = float(os.environ.get("LOADTEST_BATCH_SHARE", "0.05"))
API = os.environ.get("LOADTEST_API", "bentoml")
ID_COLUMN = os.environ.get("LOADTEST_ID_COLUMN", "customerID")
ENDPOINT = os.environ.get("LOADTEST_ENDPOINT", "predict")
API_KEY = os.environ.get("LOADTEST_API_KEY", "")
HEADERS = {
    "Content-Type": "application/json",
    **({"Authorization": f"Bearer {API_KEY}"} if API_KEY else {}),
}
PATH, BODY_KEY = (
    (f"/{ENDPOINT}", "customers") if API == "bentoml" else ("/invocations", "dataframe_records")
)
ANSWERED_FILE = os.environ.get("LOADTEST_ANSWERED", "")
# When set, every request's start (Unix seconds) and response time (ms) is written here at the
# end, so a bench can take percentiles over any window of the run.
LATENCIES_FILE = os.environ.get("LOADTEST_LATENCIES", "")
LATENCIES: list[tuple[float, float]] = []
# (request id, customers) of every request answered with a good body.
ANSWERED: list[tuple[str, int]] = []
RECORDS: list[dict[str, Any]] = []
# Each record as JSON, serialised once: Locust shares the machine with the service it
# measures, so its own CPU counts.
RECORD_JSON: list[str] = []


@events.init.add_listener  # type: ignore[untyped-decorator]
def _load_customers(environment: Environment, **_: Any) -> None:
    RECORDS.extend(load_records())
    RECORD_JSON.extend(json.dumps(_as_sent(record)) for record in RECORDS)


@events.request.add_listener  # type: ignore[untyped-decorator]
def _note_latency(start_time: float, response_time: float, **_: Any) -> None:
    if LATENCIES_FILE:
        LATENCIES.append((start_time, response_time))


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _write_answered(environment: Environment, **_: Any) -> None:
    if ANSWERED_FILE:
        lines = (f"{request_id},{customers}\n" for request_id, customers in ANSWERED)
        Path(ANSWERED_FILE).write_text("request_id,customers\n" + "".join(lines))
    if LATENCIES_FILE:
        lines = (f"{started:.4f},{ms:.2f}\n" for started, ms in LATENCIES)
        Path(LATENCIES_FILE).write_text("started,response_ms\n" + "".join(lines))


def _as_sent(record: dict[str, Any]) -> dict[str, Any]:
    if API == "bentoml":
        return record
    # MLflow's signature has no id column and warns on every request that carries one.
    return {key: value for key, value in record.items() if key != ID_COLUMN}


class PredictUser(FastHttpUser):
    wait_time = constant_throughput(TARGET_RATE / USERS)

    def on_start(self) -> None:
        self.rng = random.Random()
        # The service sets no cookies on these paths, and http.cookiejar's handling of every
        # request and response took about 4% of Locust's CPU, which the service shares.
        self.client.client.cookiejar = None

    @task
    def predict(self) -> None:
        batch = self.rng.random() < BATCH_SHARE
        if batch:
            rows = self.rng.sample(range(len(RECORDS)), self.rng.randint(10, 100))
        else:
            rows = [self.rng.randrange(len(RECORDS))]
        size = len(rows)
        customers = [RECORDS[row] for row in rows]
        request_id = f"lt-{uuid.uuid4().hex}" if ANSWERED_FILE else ""
        with self.client.post(
            PATH,
            data=f'{{"{BODY_KEY}": [{", ".join(RECORD_JSON[row] for row in rows)}]}}',
            headers={**HEADERS, "X-Request-ID": request_id} if request_id else HEADERS,
            name=f"{PATH} [{'10-100' if batch else 1}]",
            catch_response=True,
        ) as response:
            problem = check(response.status_code, response.text, customers, API)
            if problem:
                response.failure(problem)
            else:
                response.success()
                if request_id:
                    ANSWERED.append((request_id, size))
