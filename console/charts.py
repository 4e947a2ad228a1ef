"""Small inline SVG charts for the console: no script, nothing fetched, readable without colour
(every bar and point carries its number as text or a title)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

INK, BAR, SECOND, RISE, FALL = "#1f2933", "#2b6cb0", "#9fb3c8", "#c53030", "#2f855a"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    colour: str = BAR


def bars(title: str, items: Sequence[Bar], width: int = 520) -> Markup:
    """Horizontal bars scaled to the largest absolute value, each with its label above it, so
    long labels fit a phone's width too."""
    if not items:
        return Markup(f"<p>{html.escape(title)}: none.</p>")
    row, room = 42, width - 110
    biggest = max(abs(item.value) for item in items) or 1.0
    rows = []
    for index, item in enumerate(items):
        y = index * row
        length = max(room * abs(item.value) / biggest, 1.0)
        rows.append(
            f'<text x="0" y="{y + 14}">{html.escape(item.label)[:60]}</text>'
            f'<rect x="0" y="{y + 20}" width="{length:.1f}" height="16" fill="{item.colour}">'
            f"<title>{html.escape(item.label)}: {html.escape(item.text)}</title></rect>"
            f'<text x="{length + 6:.1f}" y="{y + 33}">{html.escape(item.text)}</text>'
        )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {row * len(items)}" role="img" '
        f'aria-label="{html.escape(title)}" font-size="14" fill="{INK}">{"".join(rows)}</svg>'
    )


def paired_bars(
    title: str, labels: Sequence[str], first: Sequence[float], second: Sequence[float]
) -> Markup:
    """Two shares per label (reference and current), for a feature's drift."""
    row, label_width, room = 30, 170, 250
    biggest = max([*first, *second, 1e-9])
    # Unseen levels and missing values are shown only when there are some.
    shown = [
        (label, a, b)
        for label, a, b in zip(labels, first, second, strict=True)
        if a or b or not label.startswith("__")
    ]
    rows = []
    for index, (label, a, b) in enumerate(shown):
        y = index * row
        rows.append(
            f'<text x="{label_width - 8}" y="{y + 18}" text-anchor="end">{html.escape(label)[:26]}'
            f'</text><rect x="{label_width}" y="{y + 4}" width="{room * a / biggest:.1f}" '
            f'height="10" fill="{SECOND}"/><rect x="{label_width}" y="{y + 15}" '
            f'width="{room * b / biggest:.1f}" height="10" fill="{BAR}"/>'
            f'<text x="{label_width + room + 8}" y="{y + 18}">{a:.1%} → {b:.1%}</text>'
        )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {label_width + room + 110} {row * len(shown)}" '
        f'role="img" aria-label="{html.escape(title)}" font-size="12" fill="{INK}">'
        f"{''.join(rows)}</svg>"
    )


def risk_over_time(
    points: Sequence[tuple[str, float, str]], threshold: float | None, width: int = 720
) -> Markup:
    """A customer's churn probability over time: (label, probability, tier) oldest first."""
    if not points:
        return Markup("<p>No recorded scores.</p>")
    height, left, bottom, top = 220, 44, 28, 12
    plot_w, plot_h = width - left - 16, height - bottom - top
    step = plot_w / max(len(points) - 1, 1)

    def y_of(p: float) -> float:
        return top + plot_h * (1 - p)

    xy = [(left + index * step, y_of(p)) for index, (_, p, _) in enumerate(points)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    grid = "".join(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{y_of(v):.1f}" y2="{y_of(v):.1f}" '
        f'stroke="#d9e2ec"/><text x="{left - 6}" y="{y_of(v) + 4:.1f}" text-anchor="end">'
        f"{v:.0%}</text>"
        for v in (0.0, 0.25, 0.5, 0.75, 1.0)
    )
    cut = ""
    if threshold is not None:
        cut = (
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y_of(threshold):.1f}" '
            f'y2="{y_of(threshold):.1f}" stroke="{RISE}" stroke-dasharray="4 3"/>'
            f'<text x="{left + plot_w}" y="{y_of(threshold) - 4:.1f}" text-anchor="end" '
            f'fill="{RISE}">threshold {threshold:.0%}</text>'
        )
    # A few hundred marks at most: the line carries the rest.
    every = max(1, len(points) // 200)
    marks = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{RISE if tier == "high" else BAR}">'
        f"<title>{html.escape(label)}: {p:.1%} ({html.escape(tier)})</title></circle>"
        for index, ((x, y), (label, p, tier)) in enumerate(zip(xy, points, strict=True))
        if index % every == 0 or index == len(points) - 1
    )
    ends = (
        f'<text x="{left}" y="{height - 8}">{html.escape(points[0][0])}</text>'
        f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end">'
        f"{html.escape(points[-1][0])}</text>"
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Churn probability over time" font-size="12" fill="{INK}">{grid}{cut}'
        f'<polyline points="{line}" fill="none" stroke="{BAR}" stroke-width="2"/>{marks}{ends}'
        "</svg>"
    )
