"""A retention experiment's page and JSON, and its figures logged to the served version."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlflow import MlflowClient

from history.experiments import ExperimentResult, Uplift

COLUMNS = (
    ("treated", "Treated", "{:,.0f}"),
    ("control", "Control", "{:,.0f}"),
    ("treated_churn_rate", "Churn, treated", "{:.1%}"),
    ("control_churn_rate", "Churn, control", "{:.1%}"),
    ("uplift", "Uplift", "{:+.1%}"),
    ("kept_per_1000_treated", "Kept / 1,000 treated", "{:,.1f}"),
    ("incremental_profit_per_treated", "Profit / treated", "{:,.2f}"),
    ("incremental_profit", "Incremental profit", "{:,.0f}"),
)
VERDICT_COLOURS = {
    "keeps customers": "#1f7a3a",
    "harmful": "#b42318",
    "no clear effect": "#52606d",
    "too few outcomes": "#8a6d00",
}


@dataclass(frozen=True)
class ExperimentReport:
    result: ExperimentResult
    # The action costs came from this version's playbook.
    model_name: str
    model_version: str | None

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        name = self.result.experiment
        json_path, html_path = folder / f"{name}.json", folder / f"{name}.html"
        data = self.result.as_dict() | {
            "model_name": self.model_name,
            "costs_from_version": self.model_version,
        }
        json_path.write_text(json.dumps(data, indent=2))
        html_path.write_text(self.html())
        return json_path, html_path

    def html(self) -> str:
        """One page, no scripts and nothing fetched from the network."""
        result = self.result
        groups = ", ".join(f"{count:,} {group}" for group, count in sorted(result.assigned.items()))
        costs = (
            f"Action costs come from the playbook of {html.escape(self.model_name)} "
            f"v{html.escape(self.model_version)}."
            if self.model_version
            else "No served version was found, so profit is not computed."
        )
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Retention experiment {html.escape(result.experiment)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; }}
table {{ border-collapse: collapse; margin-bottom: 2rem; }}
td, th {{ border-bottom: 1px solid #d9e2ec; padding: .3rem .8rem; text-align: right; }}
td:nth-child(-n+2), th:nth-child(-n+2) {{ text-align: left; }}
tr.all td {{ font-weight: 600; border-top: 2px solid #9aa5b1; }}
</style></head><body>
<h1>Retention experiment {html.escape(result.experiment)}</h1>
<p>Decisions from {result.since:%Y-%m-%d %H:%M} to {result.until:%Y-%m-%d %H:%M} UTC: {groups}
customers; {result.with_outcome:,} of them have an outcome. {_unassigned(result)}</p>
<p>Uplift is the control group's churn rate minus the treated group's, with its 95% interval:
above 0, the action keeps customers who would otherwise leave. A verdict holds for every row
with enough outcomes together (Bonferroni), so its interval is wider than the one shown. Profit
per treated customer is the uplift times the treated customers' mean value, minus the action's
cost. {costs}</p>
{uplift_table(result.uplifts)}
</body></html>
"""


def uplift_table(uplifts: list[Uplift]) -> str:
    """The table the page and the console show."""
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in COLUMNS)
    rows = "".join(_row(uplift) for uplift in uplifts)
    return (
        f"<table><tr><th>Action</th><th>Segment</th>{head}<th>95% interval</th>"
        f"<th>Verdict</th></tr>{rows}</table>"
    )


def _row(uplift: Uplift) -> str:
    cells = "".join(f"<td>{_shown(getattr(uplift, key), shape)}</td>" for key, _, shape in COLUMNS)
    interval = (
        "n/a"
        if uplift.uplift_low is None or uplift.uplift_high is None
        else f"{uplift.uplift_low:+.1%} to {uplift.uplift_high:+.1%}"
    )
    colour = VERDICT_COLOURS[uplift.verdict]
    every = ' class="all"' if uplift.segment == "all" else ""
    return (
        f"<tr{every}><td>{html.escape(uplift.action)}</td><td>{html.escape(uplift.segment)}</td>"
        f"{cells}<td>{interval}</td>"
        f'<td style="color:{colour}">{html.escape(uplift.verdict)}</td></tr>'
    )


def _unassigned(result: ExperimentResult) -> str:
    if not result.unassigned_outcomes:
        return ""
    return (
        f"{result.unassigned_outcomes:,} customers with an outcome in the window were never "
        "assigned by the experiment; they are left out."
    )


def _shown(value: float | None, shape: str) -> str:
    return "n/a" if value is None else shape.format(value)


def log_to_version(client: MlflowClient, report: ExperimentReport, page: Path) -> None:
    """Tag the served version with each action's uplift (`experiment.<name>.<action>.*`) and
    attach the page to its run."""
    if report.model_version is None:
        return
    name, version = report.model_name, report.model_version
    prefix = f"experiment.{report.result.experiment}"
    tags = {f"{prefix}.computed_at": datetime.now(UTC).isoformat(timespec="seconds")}
    for uplift in report.result.uplifts:
        if uplift.segment != "all":
            continue
        action = f"{prefix}.{_tag_word(uplift.action)}"
        tags |= {f"{action}.verdict": uplift.verdict, f"{action}.treated": str(uplift.treated),
                 f"{action}.control": str(uplift.control)}  # fmt: skip
        for key in ("uplift", "uplift_low", "uplift_high", "incremental_profit_per_treated"):
            value = getattr(uplift, key)
            if value is not None:
                tags[f"{action}.{key}"] = f"{value:.6g}"
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    run_id = client.get_model_version(name, version).run_id
    if run_id:
        client.log_artifact(run_id, str(page), artifact_path="experiments")


def _tag_word(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)
