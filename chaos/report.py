"""The fault suite's table, as Markdown."""

from __future__ import annotations

from chaos.suite import Outcome

HEADER = (
    "| fault | requests sent | answered 200 | other answers | history rows expected | found "
    "| written twice | counted in /metrics | time to recover | verdict |\n"
    "|---|---:|---:|---|---:|---:|---:|---|---:|---|"
)


def table(outcomes: list[Outcome]) -> str:
    return "\n".join([HEADER, *(_row(outcome) for outcome in outcomes)])


def _row(outcome: Outcome) -> str:
    others = ", ".join(f"{status}: {count}" for status, count in outcome.others.most_common())
    recover = "never" if outcome.recover_s is None else f"{outcome.recover_s:.1f} s"
    verdict = "; ".join(outcome.failures) or "ok"
    counted = "-" if outcome.counted is None else f"{outcome.counted[0]} +{outcome.counted[1]:g}"
    return (
        f"| {outcome.fault} | {outcome.sent:,} | {outcome.answered_200:,} | {others or 'none'} "
        f"| {outcome.rows_expected:,} | {outcome.rows_found:,} | {outcome.rows_twice:,} "
        f"| {counted} | {recover} | {verdict} |"
    )
