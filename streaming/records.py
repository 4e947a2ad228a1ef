"""One Kafka record in: its event id, and the validated customer or what is wrong with it.

A record is one customer as a JSON object, the same fields as one entry of `/predict`'s
`customers`, validated by the same model (built from the served model's signature). What
`/predict` would refuse is dead-lettered with the reason; what it would score (an unknown extra
field, a missing number) is scored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

EVENT_ID_HEADER = "event-id"
# A producer's own event id is kept when it looks like this; otherwise the record's place
# (topic-partition-offset) names it, which a replay of the same record repeats.
EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    event_id: str

    @classmethod
    def of(cls, record: Any) -> Event:
        """From an aiokafka ConsumerRecord."""
        return cls(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            event_id(record.topic, record.partition, record.offset, record.headers or ()),
        )


def event_id(topic: str, partition: int, offset: int, headers: Sequence[tuple[str, bytes]]) -> str:
    for name, value in headers:
        if name == EVENT_ID_HEADER:
            text = value.decode("utf-8", "replace")
            if EVENT_ID.fullmatch(text):
                return text
    return f"{topic}-{partition}-{offset}"


def customer_of(
    value: bytes | None, customer_model: type[BaseModel], max_bytes: int
) -> BaseModel | str:
    """The validated customer, or one line saying why the record cannot be scored."""
    if value is None:
        return "empty record (a tombstone): a record must be one customer as a JSON object"
    if len(value) > max_bytes:
        return (
            f"record is {len(value):,} bytes; the limit is {max_bytes:,} "
            "(CHURN_STREAM_MAX_RECORD_BYTES)"
        )
    try:
        return customer_model.model_validate_json(value)
    except ValidationError as error:
        return _reason(value, error)


def _reason(value: bytes, error: ValidationError) -> str:
    problems = error.errors(include_url=False)
    first = problems[0]
    if first["type"] == "json_invalid":
        return f"not JSON: {first['ctx']['error'] if 'ctx' in first else first['msg']}"
    if not first["loc"]:
        return (
            f"a record must be one customer as a JSON object, not {_json_kind(json.loads(value))}"
        )
    return "; ".join(
        f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in problems
    )


def _json_kind(data: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(data), "a number")
