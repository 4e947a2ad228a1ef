"""Register (or update) the MLflow webhook that reports `champion` moves to the relay.

Needs a tracking server with a SQL backend (`MLFLOW_TRACKING_URI=http://...`): MLflow 3's
webhooks are experimental and fire from the server.
"""

from __future__ import annotations

import argparse
import os

from mlflow.entities.webhook import WebhookEvent
from mlflow.tracking import MlflowClient

WEBHOOK_NAME = "churn-champion-to-jenkins"
ALIAS_CREATED = WebhookEvent("model_version_alias", "created")


def register(client: MlflowClient, url: str, secret: str, name: str = WEBHOOK_NAME) -> str:
    """Create the webhook, or point the existing one of that name at `url`; returns its id."""
    for webhook in client.list_webhooks():
        if webhook.name == name:
            client.update_webhook(
                webhook.webhook_id, url=url, events=[ALIAS_CREATED], secret=secret
            )
            return str(webhook.webhook_id)
    created = client.create_webhook(
        name=name,
        url=url,
        events=[ALIAS_CREATED],
        secret=secret,
        description="Build and deploy the churn service when the champion alias moves.",
    )
    return str(created.webhook_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--url", required=True, help="The relay, e.g. https://relay:8088/mlflow-webhook"
    )
    args = parser.parse_args()
    secret = os.environ.get("MLFLOW_WEBHOOK_SECRET")
    if not secret:
        raise SystemExit("error: set MLFLOW_WEBHOOK_SECRET (the relay checks signatures with it)")
    webhook_id = register(MlflowClient(), args.url, secret)
    print(f"Webhook {WEBHOOK_NAME} ({webhook_id}) sends alias moves to {args.url}")


if __name__ == "__main__":
    main()
