"""The dashboard as code and the Alertmanager configuration made from the environment."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from monitoring import dashboard
from monitoring.alertmanager_config import AlertRoutingSettings, config, main, receivers_configured

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_dashboard_is_what_the_generator_writes() -> None:
    assert dashboard.DASHBOARD_FILE.read_text() == dashboard.render()


def test_every_panel_has_a_unique_id_fits_the_grid_and_queries_the_provisioned_source() -> None:
    board = json.loads(dashboard.render())
    provisioned = yaml.safe_load(
        (ROOT / "deploy/monitoring/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = provisioned["datasources"][0]["uid"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) == len(dashboard.PANELS)
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
        assert {t["datasource"]["uid"] for t in panel["targets"]} == {uid}
    titles = " ".join(panel["title"] for panel in board["panels"]).lower()
    for topic in ("latency", "errors", "batch", "tier", "decile", "drift", "realised", "version"):
        assert topic in titles


def test_the_panels_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in json.loads(dashboard.render())["panels"]:
        grid = panel["gridPos"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & mine, panel["title"]
        cells |= mine


def test_each_receiver_is_configured_only_when_its_variables_are_set() -> None:
    assert receivers_configured(AlertRoutingSettings()) == []
    settings = AlertRoutingSettings(
        slack_webhook_url="https://slack.invalid/x",  # type: ignore[arg-type]
        email_to="team@example.com",
        smtp_password="pw",  # type: ignore[arg-type]
    )
    assert receivers_configured(settings) == ["slack", "email"]
    made = config(settings)
    assert made["receivers"][0]["email_configs"][0]["auth_password"] == "pw"
    assert [route["receiver"] for route in made["route"]["routes"]] == ["team"]


def test_drift_alerts_also_go_to_the_retrain_hook_with_its_token() -> None:
    made = config(
        AlertRoutingSettings(retrain_url="http://relay/alerts", retrain_token="t0k")  # type: ignore[arg-type]
    )
    retrain, team = made["route"]["routes"]
    assert retrain["receiver"] == "retrain" and retrain["continue"] is True
    assert retrain["matchers"] == ['alertname=~"ChurnFeatureDrift|ChurnPredictionDrift"']
    hook = made["receivers"][1]["webhook_configs"][0]
    assert hook["http_config"]["authorization"]["credentials"] == "t0k"
    assert team == {"receiver": "team"}


def test_the_written_configuration_holding_secrets_is_readable_by_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURN_ALERT_DISCORD_WEBHOOK_URL", "https://discord.invalid/secret")
    out = tmp_path / "alertmanager.yml"
    main(out=out, retrain_url=None)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "https://discord.invalid/secret" in out.read_text()
