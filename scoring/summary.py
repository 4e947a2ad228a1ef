"""Summary of a scored file: JSON for machines, one self-contained HTML page for people."""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churn.model import Decisions

MAX_REJECTION_REASONS = 20


@dataclass
class Summary:
    source: str = ""
    scored: int = 0
    rejected: int = 0
    predicted_churners: int = 0
    revenue_at_risk: float = 0.0
    total_expected_value: float = 0.0
    by_tier: Counter[str] = field(default_factory=Counter)
    by_segment: Counter[str] = field(default_factory=Counter)
    by_decile: Counter[str] = field(default_factory=Counter)
    by_action: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)

    def add(self, decisions: Decisions) -> None:
        self.scored += len(decisions.probability)
        self.predicted_churners += int(decisions.churn.sum())
        self.revenue_at_risk += float(decisions.customer_value[decisions.churn].sum())
        self.total_expected_value += float(decisions.expected_value.sum())
        self.by_tier.update(map(str, decisions.tier))
        self.by_segment.update(map(str, decisions.segment))
        self.by_decile.update(str(int(d)) for d in decisions.decile)
        self.by_action.update(map(str, decisions.action))

    def reject(self, reasons: list[str]) -> None:
        self.rejected += len(reasons)
        self.rejections.update(reasons)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "customers_scored": self.scored,
            "rows_rejected": self.rejected,
            "predicted_churn_rate": self.predicted_churners / self.scored if self.scored else 0.0,
            "predicted_churners": self.predicted_churners,
            "revenue_at_risk": round(self.revenue_at_risk, 2),
            "total_expected_value_of_actions": round(self.total_expected_value, 2),
            "by_risk_tier": dict(sorted(self.by_tier.items())),
            "by_segment": dict(self.by_segment.most_common()),
            "by_decile": {k: self.by_decile[k] for k in sorted(self.by_decile, key=int)},
            "by_action": dict(self.by_action.most_common()),
            "rejection_reasons": dict(self.rejections.most_common(MAX_REJECTION_REASONS)),
        }

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        data = self.as_dict()
        json_path, html_path = folder / "summary.json", folder / "summary.html"
        json_path.write_text(json.dumps(data, indent=2))
        html_path.write_text(render_html(data))
        return json_path, html_path


def render_html(data: dict[str, Any]) -> str:
    """One page, inline SVG charts, no scripts and nothing fetched from the network."""
    headline = [
        ("Customers scored", f"{data['customers_scored']:,}"),
        ("Predicted churn rate", f"{data['predicted_churn_rate']:.1%}"),
        ("Revenue at risk", f"{data['revenue_at_risk']:,.0f}"),
        ("Expected value of actions", f"{data['total_expected_value_of_actions']:,.0f}"),
        ("Rows rejected", f"{data['rows_rejected']:,}"),
    ]
    cards = "".join(
        f'<div class="card"><div class="label">{html.escape(k)}</div>'
        f'<div class="value">{v}</div></div>'
        for k, v in headline
    )
    charts = "".join(
        _bar_chart(title, data[key])
        for title, key in (
            ("Customers by risk tier", "by_risk_tier"),
            ("Customers by decile (1 = riskiest)", "by_decile"),
            ("Customers by segment", "by_segment"),
            ("Recommended actions", "by_action"),
        )
    )
    rejections = (
        "".join(
            f"<tr><td>{html.escape(reason)}</td><td>{count:,}</td></tr>"
            for reason, count in data["rejection_reasons"].items()
        )
        or '<tr><td colspan="2">None</td></tr>'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Churn scoring summary</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 1rem; margin-bottom: 2rem; }}
.card {{ border: 1px solid #d9e2ec; border-radius: 8px; padding: 1rem 1.5rem; min-width: 12rem; }}
.label {{ font-size: .85rem; color: #52606d; }} .value {{ font-size: 1.6rem; font-weight: 600; }}
.charts {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(30rem, 1fr)); gap: 2rem; }}
table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #d9e2ec; padding: .3rem 1rem; text-align: left; }}
</style></head><body>
<h1>Churn scoring summary</h1><p>{html.escape(str(data["source"]))}</p>
<div class="cards">{cards}</div>
<div class="charts">{charts}</div>
<h2>Rows rejected, by reason</h2><table><tr><th>Reason</th><th>Rows</th></tr>{rejections}</table>
</body></html>
"""


def _bar_chart(title: str, counts: dict[str, int]) -> str:
    if not counts:
        return f"<section><h2>{html.escape(title)}</h2><p>No customers.</p></section>"
    biggest = max(counts.values())
    row_height, label_width, bar_width = 26, 260, 320
    bars = []
    for index, (label, count) in enumerate(counts.items()):
        y = index * row_height
        width = bar_width * count / biggest if biggest else 0
        bars.append(
            f'<text x="{label_width - 8}" y="{y + 17}" text-anchor="end" font-size="13">'
            f"{html.escape(str(label))[:40]}</text>"
            f'<rect x="{label_width}" y="{y + 4}" width="{width:.1f}" height="18" fill="#3e7cb1"/>'
            f'<text x="{label_width + width + 6:.1f}" y="{y + 17}" font-size="13">{count:,}</text>'
        )
    height = row_height * len(counts)
    return (
        f"<section><h2>{html.escape(title)}</h2>"
        f'<svg width="{label_width + bar_width + 90}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}">{"".join(bars)}</svg></section>'
    )
