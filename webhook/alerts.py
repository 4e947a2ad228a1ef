"""Drift alerts from Alertmanager's webhook, which the relay turns into a retrain build.

Alertmanager sends `Authorization: Bearer <token>` (CHURN_ALERT_RETRAIN_TOKEN on its side,
RELAY_ALERT_TOKEN here), compared in constant time. Each firing drift alert is one episode,
named by its fingerprint and start time: Alertmanager repeats a firing alert, and a replica
or a restart must not retrain again for the same episode.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

DRIFT_ALERTS = frozenset({"ChurnFeatureDrift", "ChurnPredictionDrift"})


@dataclass(frozen=True)
class DriftAlert:
    name: str
    feature: str | None
    episode: str


def authorised(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def firing_drift_alerts(body: Any) -> list[DriftAlert]:
    """The firing drift alerts of an Alertmanager webhook body; ValueError if it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("alerts"), list):
        raise ValueError("not an Alertmanager webhook body: it needs a list of alerts")
    found = []
    for alert in body["alerts"]:
        labels = alert.get("labels") if isinstance(alert, dict) else None
        if not isinstance(labels, dict) or alert.get("status") != "firing":
            continue
        if labels.get("alertname") in DRIFT_ALERTS:
            episode = f"{alert.get('fingerprint', '')}:{alert.get('startsAt', '')}"
            found.append(DriftAlert(labels["alertname"], labels.get("feature"), episode))
    return found
