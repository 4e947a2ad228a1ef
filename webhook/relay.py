"""Relay between MLflow's registry webhooks (and Alertmanager's drift alerts) and Jenkins.

MLflow POSTs a signed event when an alias moves. The relay verifies the signature, drops stale
and replayed deliveries, keeps only `<model>@<alias>` being set, and triggers the Jenkins job
(Generic Webhook Trigger) with the model name and version. A delivery counts as relayed only
once Jenkins accepted it. Alertmanager POSTs drift alerts to /alerts with a bearer token; each
new drift episode triggers the same job with a retrain reason (webhook/alerts.py).
Run: `python -m webhook.relay`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from webhook.alerts import authorised, firing_drift_alerts
from webhook.deliveries import DeliveryLog
from webhook.settings import RelaySettings
from webhook.signature import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RejectedDeliveryError,
    verify,
)

log = logging.getLogger(__name__)
# The channel services in follow mode listen on (serving/model/follow.py).
FOLLOW_CHANNEL = "churn:champion"


class BodyTooLargeError(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read no further than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    settings: RelaySettings,
    client: httpx.AsyncClient | None = None,
    deliveries: DeliveryLog | None = None,
) -> Starlette:
    jenkins = client or httpx.AsyncClient(timeout=settings.jenkins_timeout_seconds)
    relayed = deliveries or DeliveryLog(
        Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2),
        done_ttl_s=2 * settings.max_age_seconds,
        claim_ttl_s=3 * settings.jenkins_timeout_seconds,
        prefix=settings.redis_prefix,
    )

    async def receive(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, settings.max_body_bytes)
        except BodyTooLargeError:
            return JSONResponse(
                {"error": f"Body larger than {settings.max_body_bytes} bytes"}, status_code=413
            )
        except ClientDisconnect:
            return JSONResponse({"error": "client disconnected"}, status_code=400)
        now = time.time()
        delivery_id = request.headers.get(DELIVERY_ID_HEADER)
        try:
            verify(
                settings.secret.get_secret_value(),
                delivery_id,
                request.headers.get(TIMESTAMP_HEADER),
                request.headers.get(SIGNATURE_HEADER),
                body,
                now,
                settings.max_age_seconds,
            )
            event = json.loads(body)
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except RejectedDeliveryError as exc:
            log.warning("Rejected webhook delivery %r: %s", delivery_id, exc)
            return JSONResponse({"error": str(exc)}, status_code=401)
        except ValueError:
            return JSONResponse({"error": "the body is not a JSON object"}, status_code=400)

        data: dict[str, Any] = event.get("data") or {}
        wanted = (
            event.get("entity") == "model_version_alias"
            and event.get("action") == "created"
            and data.get("name") == settings.model_name
            and data.get("alias") == settings.model_alias
            and data.get("version") is not None
        )
        if not wanted:
            return JSONResponse({"forwarded": False, "reason": "not a promotion we deploy"}, 202)

        try:
            claim = await relayed.claim(str(delivery_id))
        except RedisError as exc:
            log.error("Cannot reach the delivery log: %s", exc)
            return JSONResponse(
                {"error": "the delivery log is unavailable; retry later"},
                status_code=503,
                headers={"Retry-After": "10"},
            )
        if claim == "done":
            log.warning("Rejected replayed webhook delivery %s", delivery_id)
            return JSONResponse({"error": "delivery already relayed"}, status_code=409)
        if claim == "in progress":
            return JSONResponse(
                {"error": "this delivery is being relayed right now; retry later"},
                status_code=503,
                headers={"Retry-After": str(settings.jenkins_timeout_seconds)},
            )
        await _broadcast(data, request.headers.get(TIMESTAMP_HEADER))
        return await _trigger(str(delivery_id), data)

    broadcaster = (
        Redis.from_url(settings.broadcast_url, socket_timeout=2, socket_connect_timeout=2)
        if settings.broadcast_url
        else None
    )

    async def _broadcast(data: dict[str, Any], timestamp: str | None) -> None:
        """Tell every worker in follow mode at once; they resolve the alias themselves, so a
        lost message only means they notice at their next poll."""
        if broadcaster is None:
            return
        at = int(timestamp) if timestamp and timestamp.isdigit() else time.time()
        event = {"name": data["name"], "alias": data["alias"], "version": str(data["version"]),
                 "at": at}  # fmt: skip
        try:
            await broadcaster.publish(FOLLOW_CHANNEL, json.dumps(event))
        except RedisError as exc:
            log.error("Cannot publish the promotion on %s: %s", settings.broadcast_url, exc)

    async def _post_to_jenkins(trigger: dict[str, str]) -> str | None:
        """Start the job with `trigger` as its variables; what went wrong, or None."""
        try:
            response = await jenkins.post(
                settings.jenkins_trigger_url,
                params={"token": settings.jenkins_trigger_token.get_secret_value()},
                json=trigger,
            )
        except httpx.HTTPError as exc:
            return f"Jenkins could not be reached: {type(exc).__name__}"
        return f"Jenkins answered {response.status_code}" if response.is_error else None

    async def _trigger(delivery_id: str, data: dict[str, Any]) -> JSONResponse:
        trigger = {
            "model_name": data["name"],
            "model_alias": data["alias"],
            "model_version": str(data["version"]),
            "delivery_id": delivery_id,
        }
        failure = await _post_to_jenkins(trigger)
        if failure is not None:
            log.error("Delivery %s not relayed: %s", delivery_id, failure)
            await _quietly(relayed.release(delivery_id))  # else the claim expires on its own
            return JSONResponse({"error": failure}, status_code=502)
        await _quietly(relayed.done(delivery_id))
        log.info("Triggered Jenkins for %s version %s", data["name"], data["version"])
        return JSONResponse({"forwarded": True, **trigger}, status_code=202)

    episodes = DeliveryLog(
        relayed.redis,
        done_ttl_s=settings.alert_episode_ttl_seconds,
        claim_ttl_s=3 * settings.jenkins_timeout_seconds,
        prefix=settings.redis_prefix.replace("delivery", "drift-episode"),
    )

    async def alerts(request: Request) -> JSONResponse:
        if settings.alert_token is None:
            return JSONResponse({"error": "drift alerts are off: set RELAY_ALERT_TOKEN"}, 404)
        if not authorised(
            request.headers.get("authorization"), settings.alert_token.get_secret_value()
        ):
            log.warning("Rejected an alert delivery without the right bearer token")
            return JSONResponse({"error": "a valid bearer token is required"}, 401)
        try:
            drift = firing_drift_alerts(
                json.loads(await read_body(request, settings.max_body_bytes))
            )
        except BodyTooLargeError:
            return JSONResponse({"error": f"Body larger than {settings.max_body_bytes} bytes"}, 413)
        except ClientDisconnect:
            return JSONResponse({"error": "client disconnected"}, status_code=400)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            fresh = [alert for alert in drift if await episodes.claim(alert.episode) == "claimed"]
        except RedisError as exc:
            log.error("Cannot reach the delivery log: %s", exc)
            return JSONResponse({"error": "the delivery log is unavailable"}, 503)
        if not fresh:
            return JSONResponse({"forwarded": False, "reason": "no new drift episode"}, 200)
        reason = "drift: " + ", ".join(
            f"{alert.name}{f' ({alert.feature})' if alert.feature else ''}" for alert in fresh
        )
        trigger = {
            "model_name": settings.model_name,
            "model_alias": settings.model_alias,
            "model_version": "",
            "retrain_reason": reason,
        }
        failure = await _post_to_jenkins(trigger)
        for alert in fresh:
            await _quietly(
                episodes.release(alert.episode) if failure else episodes.done(alert.episode)
            )
        if failure is not None:
            log.error("Retrain not triggered: %s", failure)
            return JSONResponse({"error": failure}, status_code=502)
        log.info("Triggered a retrain build: %s", reason)
        return JSONResponse({"forwarded": True, **trigger}, status_code=202)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/mlflow-webhook", receive, methods=["POST"]),
            Route("/alerts", alerts, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


async def _quietly(update: Awaitable[None]) -> None:
    try:
        await update
    except RedisError as exc:
        log.error("Cannot update the delivery log: %s", exc)


def main() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = RelaySettings()  # type: ignore[call-arg]
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
    )


if __name__ == "__main__":
    main()
