"""The realised-performance page and JSON, and the figures logged to each model version."""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from history.database import is_postgres
from history.sinks import sqlite_time
from history.store import History
from training.realised import Realised

log = logging.getLogger(__name__)

COLUMNS = (
    ("customers", "Customers", "{:,.0f}"),
    ("churn_rate", "Churn rate", "{:.1%}"),
    ("roc_auc", "ROC-AUC", "{:.3f}"),
    ("pr_auc", "PR-AUC", "{:.3f}"),
    ("precision", "Precision", "{:.3f}"),
    ("recall", "Recall", "{:.3f}"),
    ("top_decile_lift", "Top-decile lift", "{:.2f}"),
    ("targeted_share", "Targeted", "{:.1%}"),
    ("profit_per_customer", "Profit / customer", "{:,.2f}"),
)


@dataclass(frozen=True)
class Report:
    model_name: str
    window_days: int
    results: list[Realised]

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        json_path, html_path = folder / "performance.json", folder / "performance.html"
        data = {
            "model_name": self.model_name,
            "window_days": self.window_days,
            "versions": [result.as_dict() for result in self.results],
        }
        json_path.write_text(json.dumps(data, indent=2))
        html_path.write_text(self.html())
        return json_path, html_path

    def html(self) -> str:
        """One page, no scripts and nothing fetched from the network."""
        head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in COLUMNS)
        rows = "".join(
            f"<tr><td>v{html.escape(result.model_version)}</td>"
            + "".join(
                f"<td>{_shown(getattr(result, key), shape)}</td>" for key, _, shape in COLUMNS
            )
            + "</tr>"
            for result in self.results
        )
        calibration = "".join(_calibration_table(result) for result in self.results)
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Realised churn model performance</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; }}
table {{ border-collapse: collapse; margin-bottom: 2rem; }}
td, th {{ border-bottom: 1px solid #d9e2ec; padding: .3rem 1rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
</style></head><body>
<h1>Realised performance of {html.escape(self.model_name)}</h1>
<p>Each outcome is judged by the newest prediction each version made for that customer in the
{self.window_days} days before it was observed. Precision and recall are at the threshold the
model applied; profit counts the customers who were offered an action.</p>
<table><tr><th>Version</th>{head}</tr>{rows}</table>
<h2>Calibration: predicted against observed churn rate, by decile (1 = riskiest)</h2>
{calibration}
</body></html>
"""


def _calibration_table(result: Realised) -> str:
    rows = "".join(
        f"<tr><td>{bin_.decile}</td><td>{bin_.customers:,}</td>"
        f"<td>{bin_.predicted_rate:.1%}</td><td>{bin_.observed_rate:.1%}</td></tr>"
        for bin_ in result.calibration
    )
    return (
        f"<h3>v{html.escape(result.model_version)}</h3><table><tr><th>Decile</th>"
        f"<th>Customers</th><th>Predicted</th><th>Observed</th></tr>{rows}</table>"
    )


def _shown(value: float | None, shape: str) -> str:
    return "n/a" if value is None else shape.format(value)


def log_to_versions(client: MlflowClient, report: Report, page: Path) -> list[str]:
    """Tag each version with its `realised.*` figures and attach the page to its run; the
    versions logged."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    logged = []
    for result in report.results:
        try:
            version = client.get_model_version(report.model_name, result.model_version)
        except MlflowException as error:
            log.warning("Not logging v%s: %s", result.model_version, error)
            continue
        tags = {f"realised.{key}": f"{value:.6g}" for key, value in result.figures().items()}
        tags |= {"realised.window_days": str(report.window_days), "realised.computed_at": stamp}
        for key, value in tags.items():
            client.set_model_version_tag(report.model_name, result.model_version, key, value)
        if version.run_id:
            client.log_artifact(version.run_id, str(page), artifact_path="realised")
        logged.append(result.model_version)
    return logged


STORE_REALISED = """
INSERT INTO realised_performance (model_name, model_version, computed_at, customers, roc_auc,
    pr_auc, top_decile_lift, profit_per_customer)
VALUES (:model_name, :model_version, :computed_at, :customers, :roc_auc, :pr_auc,
    :top_decile_lift, :profit_per_customer)
ON CONFLICT (model_name, model_version) DO UPDATE SET computed_at = excluded.computed_at,
    customers = excluded.customers, roc_auc = excluded.roc_auc, pr_auc = excluded.pr_auc,
    top_decile_lift = excluded.top_decile_lift, profit_per_customer = excluded.profit_per_customer
"""


def store_in_history(history: History, report: Report) -> None:
    """Keep each version's figures beside the predictions, where the service exports them to
    Prometheus (`churn_realised`) for the realised-lift alert."""
    now = datetime.now(UTC)
    stamp: object = now if is_postgres(history.engine) else sqlite_time(now)
    rows = [
        {
            "model_name": report.model_name,
            "model_version": result.model_version,
            "computed_at": stamp,
            "customers": result.customers,
            "roc_auc": result.roc_auc,
            "pr_auc": result.pr_auc,
            "top_decile_lift": result.top_decile_lift,
            "profit_per_customer": result.profit_per_customer,
        }
        for result in report.results
    ]
    if rows:
        with history.engine.begin() as connection:
            connection.execute(sa.text(STORE_REALISED), rows)
