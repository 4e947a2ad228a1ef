"""`python -m monitoring.alertmanager_config --out FILE`: the Alertmanager configuration, with its
receivers and their secrets taken from the environment (CHURN_ALERT_*).

Every receiver whose variables are set is routed every alert: Slack, Discord, email, and any
webhook (a chat bridge, or a local receiver in tests). Drift alerts can also go to the webhook
relay, which starts the retrain job. The file holds secrets, so it is written readable by its
owner only; it is made at start-up, never committed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cli.runner import run

DRIFT_ALERTS = "ChurnFeatureDrift|ChurnPredictionDrift"
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


class AlertRoutingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHURN_ALERT_", extra="ignore")

    slack_webhook_url: SecretStr | None = None
    slack_channel: str = "#churn-alerts"
    discord_webhook_url: SecretStr | None = None
    email_to: str | None = None
    email_from: str = "churn-alerts@localhost"
    smtp_smarthost: str = "localhost:587"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # Any receiver that takes Alertmanager's webhook JSON.
    webhook_url: str | None = None
    # The webhook relay's /alerts endpoint and its token: drift alerts start the retrain job.
    retrain_url: str | None = None
    retrain_token: SecretStr | None = None
    group_wait: str = "30s"
    repeat_interval: str = "4h"


def config(settings: AlertRoutingSettings) -> dict[str, Any]:
    receiver: dict[str, Any] = {"name": "team"}
    if settings.slack_webhook_url is not None:
        receiver["slack_configs"] = [
            {
                "api_url": settings.slack_webhook_url.get_secret_value(),
                "channel": settings.slack_channel,
                "send_resolved": True,
                "title": "{{ .CommonLabels.alertname }} ({{ .Status }})",
                "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n"
                "What to do: {{ .Annotations.runbook }}\n{{ end }}",
            }
        ]
    if settings.discord_webhook_url is not None:
        receiver["discord_configs"] = [
            {"webhook_url": settings.discord_webhook_url.get_secret_value(), "send_resolved": True}
        ]
    if settings.email_to:
        email: dict[str, Any] = {
            "to": settings.email_to,
            "from": settings.email_from,
            "smarthost": settings.smtp_smarthost,
            "send_resolved": True,
        }
        if settings.smtp_username:
            email["auth_username"] = settings.smtp_username
        if settings.smtp_password is not None:
            email["auth_password"] = settings.smtp_password.get_secret_value()
        receiver["email_configs"] = [email]
    if settings.webhook_url:
        receiver["webhook_configs"] = [{"url": settings.webhook_url, "send_resolved": True}]
    routes: list[dict[str, Any]] = []
    receivers = [receiver]
    if settings.retrain_url:
        retrain: dict[str, Any] = {"url": settings.retrain_url, "send_resolved": False}
        if settings.retrain_token is not None:
            retrain["http_config"] = {
                "authorization": {"credentials": settings.retrain_token.get_secret_value()}
            }
        receivers.append({"name": "retrain", "webhook_configs": [retrain]})
        routes.append(
            {
                "receiver": "retrain",
                "matchers": [f'alertname=~"{DRIFT_ALERTS}"'],
                "continue": True,
                "repeat_interval": "24h",
            }
        )
    routes.append({"receiver": "team"})
    return {
        "route": {
            "receiver": "team",
            "group_by": ["alertname", "feature"],
            "group_wait": settings.group_wait,
            "group_interval": "5m",
            "repeat_interval": settings.repeat_interval,
            "routes": routes,
        },
        "inhibit_rules": [
            {
                # While /predict fails outright, its silence and latency are not news.
                "source_matchers": ['alertname="ChurnServerErrors"'],
                "target_matchers": ['alertname=~"ChurnNoPredictions|ChurnPredictLatencyHigh"'],
            }
        ],
        "receivers": receivers,
    }


def receivers_configured(settings: AlertRoutingSettings) -> list[str]:
    team = config(settings)["receivers"][0]
    return [key.removesuffix("_configs") for key in team if key.endswith("_configs")]


@app.command()
def main(
    out: Annotated[Path, typer.Option(help="Where to write the configuration.")],
    retrain_url: Annotated[
        Optional[str], typer.Option(help="Overrides CHURN_ALERT_RETRAIN_URL.")
    ] = None,
) -> None:
    """Write the Alertmanager configuration from CHURN_ALERT_* and say where alerts go."""
    settings = AlertRoutingSettings()
    if retrain_url:
        settings = settings.model_copy(update={"retrain_url": retrain_url})
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        yaml.safe_dump(config(settings), file, sort_keys=False)
    routed = receivers_configured(settings)
    typer.echo(
        f"Wrote {out}: alerts go to {', '.join(routed)}."
        if routed
        else f"Wrote {out}: no receiver is set (CHURN_ALERT_SLACK_WEBHOOK_URL, "
        "CHURN_ALERT_DISCORD_WEBHOOK_URL, CHURN_ALERT_EMAIL_TO, CHURN_ALERT_WEBHOOK_URL), so "
        "alerts are only shown in Alertmanager's UI.",
        err=True,
    )


if __name__ == "__main__":
    run(app)
