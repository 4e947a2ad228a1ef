"""`python -m monitoring.dashboard`: the Grafana dashboard as code, written as plain JSON to
monitoring/grafana/churn.json (schema 39, Grafana 11), which deploy/monitoring provisions.

Every panel is a PromQL query of the service's own metrics; tests check each query with
promtool and run it against a real Prometheus scraping a real service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from cli.runner import run

DASHBOARD_FILE = Path(__file__).parent / "grafana" / "churn.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
PREDICT = 'endpoint="/predict"'
# What the stream consumer's metrics (streaming/metrics.py) start with; the service has none.
STREAM_METRIC = "churn_stream_"
# What the service exports only with a challenger (CHURN_CHALLENGER_MODE).
CHALLENGER_METRIC = "churn_challenger_"
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@dataclass(frozen=True)
class Panel:
    title: str
    queries: dict[str, str]  # legend → PromQL
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    # Lines drawn at these values (PSI's 0.1 and 0.25, say).
    thresholds: tuple[float, ...] = ()
    width: int = 12
    height: int = 8
    extra: dict[str, Any] = field(default_factory=dict)


PANELS = (
    Panel(
        "Requests per second by endpoint",
        {"{{endpoint}}": "sum by (endpoint) (rate(bentoml_service_request_total[5m]))"},
        "reqps",
    ),
    Panel(
        "/predict latency",
        {
            f"p{q}": f"histogram_quantile(0.{q}, sum by (le) (rate("
            f"bentoml_service_request_duration_seconds_bucket{{{PREDICT}}}[5m])))"
            for q in ("50", "99")
        },
        "s",
        thresholds=(0.1,),
        description="The objective is p99 under 100 ms (ChurnPredictLatencyHigh).",
    ),
    Panel(
        "Errors and sheds",
        {
            "{{http_response_code}}": "sum by (http_response_code) (rate("
            'bentoml_service_request_total{endpoint=~"/predict|/explain",'
            'http_response_code=~"4..|5.."}[5m]))'
        },
        "reqps",
        description="4xx are bad requests, 503 is shedding at capacity, other 5xx are failures.",
    ),
    Panel(
        "Batch size (requests per batch)",
        {
            f"p{q}": f"histogram_quantile(0.{q}, sum by (le) (rate("
            "bentoml_service_adaptive_batch_size_bucket[5m])))"
            for q in ("50", "99")
        },
    ),
    Panel(
        "Predictions by risk tier",
        {"{{risk_tier}}": "sum by (risk_tier) (rate(churn_predictions_total[5m]))"},
        "cps",
        extra={"stacking": "normal"},
    ),
    Panel(
        "Predictions by decile (1 = riskiest)",
        {"{{decile}}": "sum by (decile) (rate(churn_predictions_by_decile_total[5m]))"},
        "cps",
        extra={"stacking": "normal"},
        description="With no drift each decile has about a tenth of the customers.",
    ),
    Panel(
        "Feature drift (PSI)",
        {"{{feature}}": "max by (feature) (churn_feature_psi)"},
        thresholds=(0.1, 0.25),
        description="Against the served version's training split, over CHURN_DRIFT_WINDOW. "
        "From 0.25 ChurnFeatureDrift fires.",
    ),
    Panel(
        "Prediction drift (PSI)",
        {"predictions": "max(churn_prediction_psi)"},
        thresholds=(0.1, 0.25),
    ),
    Panel(
        "Realised top-decile lift by version",
        {"v{{model_version}}": 'max by (model_version) (churn_realised{metric="top_decile_lift"})'},
        thresholds=(1.5,),
        description="From outcomes (python -m training performance); under 1.5 "
        "ChurnRealisedLiftLow fires for the served version.",
    ),
    Panel(
        "Realised ROC-AUC by version",
        {"v{{model_version}}": 'max by (model_version) (churn_realised{metric="roc_auc"})'},
        "percentunit",
    ),
    Panel(
        "Served version and champion",
        {
            "served": "max(churn_model_version)",
            "champion in the registry": "max(churn_registry_champion_version)",
        },
        kind="stat",
        width=6,
        description="Different for 30 minutes: ChurnServedVersionNotChampion.",
    ),
    Panel(
        "Prediction history",
        {
            "written/s": "sum(rate(churn_history_written_total[5m]))",
            "dropped/s": "sum(rate(churn_history_dropped_total[5m]))",
        },
        "rowsps",
        width=18,
    ),
    Panel(
        "Challenger: agreement with the champion",
        {"same {{what}}": "min by (what) (churn_challenger_agreement)"},
        "percentunit",
        thresholds=(0.8,),
        description="Over the latest customers both scored; under 80% on actions for 30 minutes: "
        "ChurnChallengerDisagrees. GET /challenger has it by segment.",
    ),
    Panel(
        "Challenger: customers scored and dropped",
        {
            "{{mode}}/s": "sum by (mode) (rate(churn_challenger_predictions_total[5m]))",
            "dropped/s": "sum(rate(churn_challenger_dropped_total[5m]))",
        },
        "cps",
        description="Shadow scores every customer after the champion's answer; past its queue "
        "it drops work, never the champion's.",
    ),
    Panel(
        "Stream: records per second",
        {"{{result}}": "sum by (result) (rate(churn_stream_records_total[5m]))"},
        "rps",
        description="Scored, and dead-lettered (records /predict would refuse).",
    ),
    Panel(
        "Stream: consumer lag by partition",
        {"{{topic}}/{{partition}}": "max by (topic, partition) (churn_stream_consumer_lag)"},
        description="Records not yet scored. Growing for 10 minutes: ChurnStreamLagGrowing.",
    ),
)


def dashboard() -> dict[str, Any]:
    panels, x, y, row_height = [], 0, 0, 0
    for panel_id, panel in enumerate(PANELS, start=1):
        if x + panel.width > 24:
            x, y = 0, y + row_height
            row_height = 0
        panels.append(_panel(panel_id, panel, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": "churn-service",
        "title": "Churn service",
        "tags": ["churn", "bentoml", "mlflow"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def _panel(panel_id: int, panel: Panel, x: int, y: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [
        {"color": colour, "value": value}
        for colour, value in zip(("orange", "red"), panel.thresholds, strict=False)
    ]
    custom: dict[str, Any] = {"thresholdsStyle": {"mode": "line" if panel.thresholds else "off"}}
    if "stacking" in panel.extra:
        custom["stacking"] = {"mode": panel.extra["stacking"], "group": "A"}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {
            "defaults": {
                "unit": panel.unit,
                "thresholds": {"mode": "absolute", "steps": steps},
                **({"custom": custom} if panel.kind == "timeseries" else {}),
            },
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
            }
            for index, (legend, expr) in enumerate(panel.queries.items())
        ],
    }


def queries() -> list[str]:
    return [expr for panel in PANELS for expr in panel.queries.values()]


def as_rules(exprs: list[str]) -> dict[str, Any]:
    """Each query as a recording rule, so `promtool check rules` parses it."""
    return {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": e} for n, e in enumerate(exprs)
                ],
            }
        ]
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


@app.command()
def main(
    out: Annotated[Path, typer.Option(help="Where to write the dashboard JSON.")] = DASHBOARD_FILE,
    rules: Annotated[
        Optional[Path], typer.Option(help="Also write every query as a rule file for promtool.")
    ] = None,
) -> None:
    """Write the Grafana dashboard (and, for promtool, its queries as rules)."""
    import yaml

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render())
    typer.echo(f"Wrote {out} ({len(PANELS)} panels).")
    if rules is not None:
        rules.write_text(yaml.safe_dump(as_rules(queries()), sort_keys=False))
        typer.echo(f"Wrote {rules} ({len(queries())} queries).")


if __name__ == "__main__":
    run(app)
