"""The drift report as JSON for machines and one self-contained HTML page for people, in the
style of the scoring summary: no scripts, inline SVG, nothing fetched."""

from __future__ import annotations

import html
import json
from pathlib import Path

from monitoring.drift import DriftReport, FeatureDrift
from monitoring.psi import MODERATE, SIGNIFICANT

COLOURS = {
    "stable": "#2f855a",
    "moderate": "#b7791f",
    "significant": "#c53030",
    "no data": "#52606d",
    "too few rows": "#52606d",
}


def write_drift_report(report: DriftReport, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "drift.json", folder / "drift.html"
    json_path.write_text(json.dumps(report.as_dict(), indent=2))
    html_path.write_text(render_drift_html(report))
    return json_path, html_path


def render_drift_html(report: DriftReport) -> str:
    rows = "".join(_summary_row(drift) for drift in (report.prediction, *report.features))
    charts = "".join(_chart(drift) for drift in (report.prediction, *report.features))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Churn model drift</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; }}
table {{ border-collapse: collapse; margin-bottom: 2rem; }}
td, th {{ border-bottom: 1px solid #d9e2ec; padding: .3rem 1rem; text-align: left; }}
.charts {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(30rem, 1fr)); gap: 2rem; }}
.key span {{ display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 1rem; }}
</style></head><body>
<h1>Drift of model version {html.escape(report.model_version)}</h1>
<p>Recorded predictions from {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC
against the version's training split. PSI under {MODERATE} is stable, from {MODERATE} moderate,
from {SIGNIFICANT} significant. Features are measured on the sampled rows that keep them.</p>
<table><tr><th>What</th><th>PSI</th><th>Stability</th><th>Rows</th></tr>{rows}</table>
<p class="key">Share of rows per bin:<span style="background:#9fb3c8"></span>training split
<span style="background:#3e7cb1"></span>recorded window</p>
<div class="charts">{charts}</div>
</body></html>
"""


def _name(drift: FeatureDrift) -> str:
    return "predictions (deciles)" if drift.feature == "__prediction__" else drift.feature


def _summary_row(drift: FeatureDrift) -> str:
    value = "n/a" if drift.psi is None else f"{drift.psi:.3f}"
    colour = COLOURS[drift.stability]
    return (
        f"<tr><td>{html.escape(_name(drift))}</td><td>{value}</td>"
        f'<td style="color:{colour}">{drift.stability}</td><td>{drift.rows:,}</td></tr>'
    )


def _chart(drift: FeatureDrift) -> str:
    row_height, label_width, bar_width = 30, 180, 300
    biggest = max([*drift.reference, *drift.current, 1e-9])
    bars = []
    for index, (label, expected, current) in enumerate(
        zip(drift.labels, drift.reference, drift.current, strict=True)
    ):
        y = index * row_height
        bars.append(
            f'<text x="{label_width - 8}" y="{y + 18}" text-anchor="end" font-size="12">'
            f"{html.escape(label)[:28]}</text>"
            f'<rect x="{label_width}" y="{y + 4}" width="{bar_width * expected / biggest:.1f}" '
            f'height="10" fill="#9fb3c8"/>'
            f'<rect x="{label_width}" y="{y + 15}" width="{bar_width * current / biggest:.1f}" '
            f'height="10" fill="#3e7cb1"/>'
            f'<text x="{label_width + bar_width + 6}" y="{y + 18}" font-size="12">'
            f"{expected:.1%} → {current:.1%}</text>"
        )
    title = f"{_name(drift)}: PSI {'n/a' if drift.psi is None else f'{drift.psi:.3f}'}"
    return (
        f"<section><h2>{html.escape(title)}</h2>"
        f'<svg width="{label_width + bar_width + 120}" height="{row_height * len(drift.labels)}" '
        f'role="img" aria-label="{html.escape(title)}">{"".join(bars)}</svg></section>'
    )
