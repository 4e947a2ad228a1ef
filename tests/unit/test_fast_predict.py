"""The ASGI /predict path: validation, batching, ordering, shedding and pass-through."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Message, Receive, Scope, Send

from churn.explain import Reason
from serving.http.errors import first_unscorable_explanation
from serving.http.fast_predict import OVERLOADED, FastPredict, PredictEndpoint
from serving.model.schema import request_model


class Customer(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    customer_id: str = Field(alias="customerID")
    tenure: float


PredictRequest = request_model(Customer, max_customers=100, example={})


class Scorer:
    """Doubles each customer's tenure, and remembers the batches it was given."""

    def __init__(self, seconds_per_batch: float = 0.0, seconds_per_customer: float = 0.0) -> None:
        self.batches: list[int] = []
        self.client_of: dict[str, str] = {}
        self.request_of: dict[str, str] = {}
        self.seconds_per_batch = seconds_per_batch
        self.seconds_per_customer = seconds_per_customer

    def __call__(
        self, customers: list[Any], clients: list[str], request_ids: list[str]
    ) -> list[dict[str, Any]]:
        self.batches.append(len(customers))
        ids = [c.customer_id for c in customers]
        self.client_of.update(zip(ids, clients, strict=True))
        self.request_of.update(zip(ids, request_ids, strict=True))
        time.sleep(self.seconds_per_batch + self.seconds_per_customer * len(customers))
        return [{"customer_id": c.customer_id, "double": 2 * c.tenure} for c in customers]


async def other_routes(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _endpoint(
    scorer: Scorer | None,
    max_latency_ms: int = 1000,
    max_in_flight: int = 1000,
    max_batch_size: int = 500,
) -> PredictEndpoint:
    endpoint = PredictEndpoint(
        PredictRequest, max_latency_ms, max_batch_size=max_batch_size, max_in_flight=max_in_flight
    )
    if scorer is not None:
        endpoint.bind(scorer)
    return endpoint


def _send_all(endpoint: PredictEndpoint, bodies: list[Any]) -> list[httpx.Response]:
    """Send every body at once."""

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=FastPredict(other_routes, endpoint))
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            tasks = []
            for body in bodies:
                if isinstance(body, bytes):
                    request = client.post("/predict", content=body)
                else:
                    request = client.post("/predict", json=body)
                tasks.append(asyncio.create_task(request))
            return await asyncio.gather(*tasks)

    return asyncio.run(send_all())


def test_concurrent_requests_are_batched_and_each_gets_its_own_answers_in_order() -> None:
    scorer = Scorer(seconds_per_batch=0.01)
    bodies = [
        {"customers": [{"customerID": f"{n}-{i}", "tenure": n + i} for i in range(1 + n % 3)]}
        for n in range(60)
    ]
    responses = _send_all(_endpoint(scorer), bodies)
    for body, response in zip(bodies, responses, strict=True):
        assert response.status_code == 200, response.text
        expected = [
            {"customer_id": c["customerID"], "double": 2.0 * c["tenure"]} for c in body["customers"]
        ]
        assert response.json() == expected
    assert sum(scorer.batches) == sum(len(b["customers"]) for b in bodies)
    assert max(scorer.batches) > 3, "no two requests were ever scored together"


def test_each_customer_is_scored_in_the_name_of_the_client_that_sent_it() -> None:
    scorer = Scorer(seconds_per_batch=0.01)
    fast_predict = FastPredict(other_routes, _endpoint(scorer))

    async def authenticated(scope: Scope, receive: Receive, send: Send) -> None:
        client = dict(scope["headers"]).get(b"x-client")
        if client:
            scope["churn.client"] = client.decode()
        await fast_predict(scope, receive, send)

    async def send_all() -> None:
        transport = httpx.ASGITransport(app=authenticated)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            requests = [
                client.post(
                    "/predict",
                    json={"customers": [{"customerID": f"{n}-{i}", "tenure": 1} for i in range(3)]},
                    headers={"x-client": f"client-{n % 4}"} if n % 4 else {},
                )
                for n in range(40)
            ]
            await asyncio.gather(*requests)

    asyncio.run(send_all())
    assert max(scorer.batches) > 3, "no two requests were ever scored together"
    assert scorer.client_of == {
        f"{n}-{i}": f"client-{n % 4}" if n % 4 else "anonymous" for n in range(40) for i in range(3)
    }


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("order-42.retry:1", True), ("", False), ("x" * 65, False), ("a b", False), (None, False)],
)
def test_each_answer_carries_its_request_id_the_clients_own_when_it_is_plain(
    sent: str | None, kept: bool
) -> None:
    scorer = Scorer()
    app = FastPredict(other_routes, _endpoint(scorer))
    headers = {} if sent is None else {"x-request-id": sent}

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            body = {"customers": [{"customerID": "c1", "tenure": 1}]}
            return await client.post("/predict", json=body, headers=headers)

    response = asyncio.run(send())
    request_id = response.headers["x-request-id"]
    assert scorer.request_of == {"c1": request_id}
    assert (request_id == sent) is kept
    assert kept or re.fullmatch("[0-9a-f]{32}", request_id)


def test_a_bad_request_gets_a_400_naming_the_field_and_its_neighbours_are_still_answered() -> None:
    bad = {"customers": [{"customerID": "bad", "tenure": "forever"}]}
    good = [{"customers": [{"customerID": str(n), "tenure": n}]} for n in range(20)]
    responses = _send_all(_endpoint(Scorer()), [bad, *good, b'{"customers": [', {"customers": []}])
    assert responses[0].status_code == 400
    assert responses[0].json()["detail"][0]["loc"] == ["customers", 0, "tenure"]
    assert [r.json()[0]["double"] for r in responses[1:21]] == [2.0 * n for n in range(20)]
    assert responses[21].status_code == 400 and "Invalid JSON" in responses[21].text
    assert responses[22].status_code == 400 and "customers" in responses[22].text


def test_an_overloaded_batcher_sheds_with_a_documented_503_and_never_mixes_answers() -> None:
    # A burst of 400 requests; batches of 10 customers take 45 ms, so the last would wait 1.8 s.
    scorer = Scorer(seconds_per_batch=0.005, seconds_per_customer=0.004)
    bodies = [{"customers": [{"customerID": str(n), "tenure": n}]} for n in range(400)]
    endpoint = _endpoint(scorer, max_latency_ms=100, max_batch_size=10)
    responses = _send_all(endpoint, bodies)
    shed = [r for r in responses if r.status_code == 503]
    answered = [(b, r) for b, r in zip(bodies, responses, strict=True) if r.status_code == 200]
    assert shed and answered, (len(shed), len(answered))
    assert len(shed) + len(answered) == len(bodies)
    assert all(r.json() == {"error": OVERLOADED} and r.headers["retry-after"] == "1" for r in shed)
    for body, response in answered:
        assert response.json()[0]["double"] == 2.0 * body["customers"][0]["tenure"]


def test_requests_past_the_in_flight_limit_get_an_immediate_503() -> None:
    bodies = [{"customers": [{"customerID": str(n), "tenure": n}]} for n in range(20)]
    endpoint = _endpoint(Scorer(seconds_per_batch=0.2), max_in_flight=5)
    responses = _send_all(endpoint, bodies)
    assert [r.status_code for r in responses] == [200] * 5 + [503] * 15
    assert all(r.json() == {"error": OVERLOADED} for r in responses[5:])
    assert [r.json()[0]["double"] for r in responses[:5]] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert endpoint.in_flight == 0


def test_before_the_model_is_loaded_predict_answers_503() -> None:
    (response,) = _send_all(_endpoint(None), [{"customers": [{"customerID": "1", "tenure": 1}]}])
    assert response.status_code == 503 and "loading" in response.json()["error"]


def test_every_other_route_goes_to_the_service() -> None:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=FastPredict(other_routes, _endpoint(Scorer())))
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            return await client.get("/predict")

    assert asyncio.run(get()).status_code == 204


def test_a_connection_is_closed_after_its_quota_of_requests_and_others_are_not() -> None:
    app = FastPredict(other_routes, _endpoint(Scorer()), requests_per_connection=3)
    body = {"customers": [{"customerID": "1", "tenure": 1}]}

    async def send(client_address: tuple[str, int], requests: int) -> list[str | None]:
        transport = httpx.ASGITransport(app=app, client=client_address)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            answers = [await client.post("/predict", json=body) for _ in range(requests)]
        assert all(answer.status_code == 200 for answer in answers)
        return [answer.headers.get("connection") for answer in answers]

    async def both() -> tuple[list[str | None], list[str | None]]:
        first = await send(("10.0.0.1", 5000), 2)
        return await send(("10.0.0.2", 6000), 7), first + await send(("10.0.0.1", 5000), 2)

    other, first = asyncio.run(both())
    assert other == [None, None, "close", None, None, "close", None]
    assert first == [None, None, "close", None]


def test_an_explanation_with_a_contribution_that_is_not_finite_gets_a_400() -> None:
    def explain(customers: list[Any], clients: list[str], ids: list[str]) -> list[dict[str, Any]]:
        return [
            {
                "customer_id": c.customer_id,
                "churn_probability": 0.5,
                "reasons": [Reason("tenure", c.tenure, c.tenure * 1e308, "raises risk")],
            }
            for c in customers
        ]

    endpoint = PredictEndpoint(
        PredictRequest, 1000, max_batch_size=500, unscorable=first_unscorable_explanation
    )
    endpoint.bind(explain)
    fine, overflowing = _send_all(
        endpoint,
        [{"customers": [{"customerID": "a", "tenure": 0.5}]},
         {"customers": [{"customerID": "a", "tenure": 0.5}, {"customerID": "b", "tenure": 10}]}],
    )  # fmt: skip
    assert fine.status_code == 200 and fine.json()[0]["reasons"][0]["feature"] == "tenure"
    assert overflowing.status_code == 400
    assert overflowing.json()["error"].startswith("customers.1: the model cannot score")


def test_a_slow_body_gets_a_408_and_never_holds_a_place_in_flight() -> None:
    endpoint = PredictEndpoint(PredictRequest, 1000, 500, max_in_flight=1, body_timeout_s=0.3)
    endpoint.bind(Scorer())
    body = json.dumps({"customers": [{"customerID": "1", "tenure": 1}]}).encode()

    async def slow() -> Message:
        await asyncio.sleep(60)
        return {"type": "http.request", "body": body, "more_body": False}

    async def at_once() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def both() -> tuple[list[Any], Any]:
        stalled = [asyncio.create_task(endpoint.answer(slow)) for _ in range(5)]
        await asyncio.sleep(0.05)
        normal = await endpoint.answer(at_once)
        return [await task for task in stalled], normal

    stalled, normal = asyncio.run(both())
    assert normal is not None and normal.status == 200
    assert {answer.status for answer in stalled} == {408}
    assert b"did not arrive within 0.3 s" in stalled[0].body
    assert endpoint.in_flight == 0


def test_bodies_stalled_together_do_not_time_out_together() -> None:
    endpoint = PredictEndpoint(PredictRequest, 1000, 500, max_in_flight=1, body_timeout_s=0.2)
    endpoint.bind(Scorer())

    async def slow() -> Message:
        await asyncio.sleep(60)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def timed() -> float:
        answer = await endpoint.answer(slow)
        assert answer is not None and answer.status == 408
        return time.monotonic() - started

    async def stall_all() -> list[float]:
        return list(await asyncio.gather(*(timed() for _ in range(20))))

    started = time.monotonic()
    ended = asyncio.run(stall_all())
    assert min(ended) >= 0.2  # no body gets less than the documented time
    assert max(ended) < 0.2 * 1.5 + 0.5
    assert max(ended) - min(ended) > 0.03  # 20 draws from [0.2, 0.3] s: spread about 0.09 s
