"""Relay between MLflow's registry webhooks and Jenkins.

MLflow POSTs a signed event when an alias moves. The relay verifies the signature, drops stale
and replayed deliveries, keeps only `<model>@<alias>` being set, and triggers the Jenkins job
(Generic Webhook Trigger) with the model name and version. Run: `python -m webhook.relay`.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from webhook.settings import RelaySettings
from webhook.signature import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RejectedDeliveryError,
    verify,
)

log = logging.getLogger(__name__)


class SeenDeliveries:
    """Delivery ids seen within the replay window."""

    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self.seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, delivery_id: str, now: float) -> bool:
        while self.seen and next(iter(self.seen.values())) < now - 2 * self.window:
            self.seen.popitem(last=False)
        if delivery_id in self.seen:
            return False
        self.seen[delivery_id] = now
        return True


def create_app(settings: RelaySettings, client: httpx.AsyncClient | None = None) -> Starlette:
    seen = SeenDeliveries(settings.max_age_seconds)
    jenkins = client or httpx.AsyncClient(timeout=10)

    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
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
        except RejectedDeliveryError as exc:
            log.warning("Rejected webhook delivery %s: %s", delivery_id, exc)
            return JSONResponse({"error": str(exc)}, status_code=401)
        if not seen.first_time(str(delivery_id), now):
            log.warning("Rejected replayed webhook delivery %s", delivery_id)
            return JSONResponse({"error": "delivery already received"}, status_code=409)

        event = json.loads(body)
        data: dict[str, Any] = event.get("data", {})
        wanted = (
            event.get("entity") == "model_version_alias"
            and event.get("action") == "created"
            and data.get("name") == settings.model_name
            and data.get("alias") == settings.model_alias
        )
        if not wanted:
            return JSONResponse({"forwarded": False, "reason": "not a promotion we deploy"}, 202)

        trigger = {
            "model_name": data["name"],
            "model_alias": data["alias"],
            "model_version": str(data["version"]),
            "delivery_id": delivery_id,
        }
        response = await jenkins.post(
            settings.jenkins_trigger_url,
            params={"token": settings.jenkins_trigger_token.get_secret_value()},
            json=trigger,
        )
        if response.status_code >= 400:
            log.error("Jenkins answered %s: %s", response.status_code, response.text[:300])
            return JSONResponse({"error": f"Jenkins answered {response.status_code}"}, 502)
        log.info("Triggered Jenkins for %s version %s", data["name"], data["version"])
        return JSONResponse({"forwarded": True, **trigger}, status_code=202)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/mlflow-webhook", receive, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def main() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = RelaySettings()  # type: ignore[call-arg]
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
