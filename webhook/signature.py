"""Check an MLflow webhook delivery: HMAC-SHA256 over `<delivery id>.<timestamp>.<body>`.

MLflow signs each delivery (Standard Webhooks style) with the webhook's secret and sends
`X-MLflow-Signature: v1,<base64>`, `X-MLflow-Timestamp` and `X-MLflow-Delivery-Id`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"


class RejectedDeliveryError(Exception):
    """The delivery is unsigned, wrongly signed, stale or replayed."""


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    content = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(
    secret: str,
    delivery_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    max_age_seconds: float,
) -> None:
    if not (delivery_id and timestamp and signature):
        raise RejectedDeliveryError("unsigned: signature, timestamp or delivery id header missing")
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise RejectedDeliveryError(f"timestamp {timestamp!r} is not a Unix time") from exc
    if abs(now - sent) > max_age_seconds:
        raise RejectedDeliveryError(f"timestamp is {now - sent:.0f} s away from now")
    expected = sign(secret, delivery_id, timestamp, body)
    # A header may carry several space-separated signatures during secret rotation. Compared as
    # bytes: `compare_digest` refuses text that is not ASCII, and a header may hold anything.
    wanted = expected.encode()
    if not any(hmac.compare_digest(wanted, given.encode()) for given in signature.split()):
        raise RejectedDeliveryError("signature does not match")
