"""The JSON error bodies every endpoint answers with, and how a rejected request is logged."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.types import Send

SCORING_FAILED = "Scoring failed; the server log has the details."


@dataclass(frozen=True)
class Refusal:
    """An error answer decided in one place and sent from another."""

    status: int
    message: str
    headers: Sequence[tuple[bytes, bytes]] = ()


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


async def send_error(
    send: Send, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer with the JSON error body, straight from ASGI middleware."""
    body = error_body(message)
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": [*head, *headers]})
    await send({"type": "http.response.body", "body": body})


def validation_error_body(error: ValidationError) -> bytes:
    """The same body BentoML gives for a bad request, so clients see one format."""
    return json.dumps(
        {
            "error": f"{error.error_count()} validation error for {error.title}",
            "detail": error.errors(include_url=False, include_context=False, include_input=False),
        },
        default=str,
    ).encode()


def rejection_summary(error: ValidationError) -> str:
    """One log line's worth: how many problems, and where the first one is."""
    first = ".".join(map(str, error.errors(include_url=False)[0]["loc"])) or "body"
    return f"{error.error_count()} validation error(s) for {error.title}, first at {first}"


def first_unscorable(values_per_customer: Iterable[Iterable[float]]) -> int | None:
    """The index of the first customer whose answer holds NaN or an infinity, if any: finite
    inputs so extreme that the model overflows. Such a number must never reach a client."""
    for index, values in enumerate(values_per_customer):
        if not all(math.isfinite(value) for value in values):
            return index
    return None


def unscorable_message(index: int) -> str:
    return (
        f"customers.{index}: the model cannot score this customer: its numbers are so extreme "
        "that the result is not a finite number."
    )


def first_unscorable_prediction(predictions: Sequence[dict[str, Any]]) -> int | None:
    return first_unscorable(
        (value for value in prediction.values() if type(value) is float)
        for prediction in predictions
    )


def first_unscorable_explanation(explanations: Sequence[dict[str, Any]]) -> int | None:
    return first_unscorable(
        [explanation["churn_probability"], *(r.contribution for r in explanation["reasons"])]
        for explanation in explanations
    )
