"""One reader of a Prometheus /metrics page, for the benchmarks, the fault suite and the tests:
a sample is matched by its exact name and labels, never by a prefix."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def series(text: str, name: str, /, **labels: str) -> list[tuple[dict[str, str], float]]:
    """The label sets and values of the samples called `name` whose labels include `labels`."""
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]


def samples(text: str, name: str, /, **labels: str) -> list[float]:
    """The values of those samples."""
    return [value for _, value in series(text, name, **labels)]


def total(text: str, name: str, /, **labels: str) -> float:
    """The sum of those samples (0 if there are none)."""
    return float(sum(samples(text, name, **labels)))


def metric_total(url: str, name: str, /, **labels: str) -> float:
    """`total` over the page at `url`/metrics."""
    return total(httpx.get(f"{url}/metrics", timeout=10).text, name, **labels)
