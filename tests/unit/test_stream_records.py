"""A Kafka record becomes a validated customer or one line that names what is wrong."""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest
from pydantic import BaseModel, ConfigDict, FiniteFloat

from streaming.records import Event, customer_of


class Customer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    tenure: FiniteFloat | None
    Contract: str


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def event(value: bytes | None, headers: tuple[tuple[str, bytes], ...] = ()) -> Event:
    return Event.of(Record("customers", 2, 41, b"key", value, headers))


def test_a_valid_record_is_the_customer_and_extra_fields_are_ignored() -> None:
    record = {"tenure": 3, "Contract": "Month-to-month", "favourite_colour": "teal"}
    customer = customer_of(json.dumps(record).encode(), Customer, 1000)
    assert customer == Customer(tenure=3, Contract="Month-to-month")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty record"),
        (b"{nope", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1]", "not an array"),
        (b"7", "not a number"),
        (b"null", "not null"),
        (b'{"Contract": "One year"}', "tenure: Field required"),
        (b'{"tenure": "twelve", "Contract": "One year"}', "tenure: Input should be a valid number"),
        (b'{"tenure": NaN, "Contract": "One year"}', "tenure: Input should be a finite number"),
        (b'{"tenure": 1e400, "Contract": "One year"}', "tenure: Input should be a finite number"),
        (b'{"tenure": 1, "Contract": "x' + b"y" * 2000 + b'"}', "2,030 bytes; the limit is 1,000"),
    ],
)
def test_a_record_that_predict_would_refuse_gets_a_reason_that_names_it(
    value: bytes | None, reason: str
) -> None:
    result = customer_of(value, Customer, 1000)
    assert isinstance(result, str) and reason in result, result


def test_every_problem_of_a_record_is_named() -> None:
    result = customer_of(b'{"tenure": "x"}', Customer, 1000)
    assert isinstance(result, str)
    assert "tenure:" in result and "Contract: Field required" in result


def test_the_producers_event_id_is_kept_or_else_the_records_place_names_it() -> None:
    assert event(b"{}", (("event-id", b"crm-2026-12-06-0001"),)).event_id == "crm-2026-12-06-0001"
    assert event(b"{}", (("event-id", b"has spaces"),)).event_id == "customers-2-41"
    assert event(b"{}").event_id == "customers-2-41"
