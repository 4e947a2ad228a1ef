"""Acceptance rates measured in a past campaign, instead of the playbook's assumptions.

The file has one row per customer offered an action: the customer id, `action` and `accepted`
(yes/no, true/false, 1/0, y/n). Each bad row is reported with its row number (1 is the first
row after the header) and skipped; every good row counts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churn.errors import UserError
from churn.playbook import Playbook
from history.experiments import wilson_interval
from training.data import NEGATIVE_LABELS, POSITIVE_LABELS
from training.outcomes import BadRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Acceptance:
    action: str
    offered: int
    accepted: int

    @property
    def rate(self) -> float:
        return self.accepted / self.offered

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson's 95% interval, which stays inside 0..1 for small or lopsided counts."""
        return wilson_interval(self.accepted, self.offered)

    def describe(self) -> str:
        low, high = self.interval
        return (
            f"campaign: {self.accepted:,} of {self.offered:,} accepted, "
            f"95% interval {low:.1%} to {high:.1%}"
        )


@dataclass(frozen=True)
class CampaignResults:
    acceptance: dict[str, Acceptance]
    bad_rows: list[BadRow]


def read_campaign(path: Path, id_column: str) -> CampaignResults:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"Could not read the campaign results {path}: {exc}") from exc
    lacking = [c for c in (id_column, "action", "accepted") if c not in table.columns]
    if lacking:
        raise UserError(
            f"The campaign results {path} lack the columns {', '.join(lacking)}; they need "
            f"{id_column}, action and accepted. Columns present: {', '.join(table.columns)}."
        )
    counts: dict[str, list[int]] = {}
    seen: dict[tuple[str, str], int] = {}
    bad: list[BadRow] = []
    rows = zip(table[id_column], table["action"], table["accepted"], strict=True)
    for row, (customer, action, accepted) in enumerate(rows, start=1):
        customer, action, answer = customer.strip(), action.strip(), accepted.strip().lower()
        if not customer:
            bad.append(BadRow(row, f"{id_column}: the customer id is empty"))
        elif not action:
            bad.append(BadRow(row, "action: empty"))
        elif answer not in POSITIVE_LABELS | NEGATIVE_LABELS:
            bad.append(BadRow(row, f"accepted: {accepted!r} is not yes/no, true/false, 1/0 or y/n"))
        elif (customer, action) in seen:
            bad.append(BadRow(row, f"the same customer and action as row {seen[customer, action]}"))
        else:
            seen[customer, action] = row
            offered_accepted = counts.setdefault(action, [0, 0])
            offered_accepted[0] += 1
            offered_accepted[1] += answer in POSITIVE_LABELS
    return CampaignResults(
        {action: Acceptance(action, n, k) for action, (n, k) in counts.items()}, bad
    )


def measured_playbook(playbook: Playbook, results: CampaignResults) -> Playbook:
    """`playbook` with each action the campaign offered at its measured acceptance rate."""
    unknown = sorted(set(results.acceptance) - set(playbook.actions))
    if unknown:
        log.warning(
            "Campaign results name actions the playbook %s does not have: %s",
            playbook.name,
            ", ".join(unknown),
        )
    measured = {
        name: (estimate.rate, estimate.describe())
        for name, estimate in results.acceptance.items()
        if name in playbook.actions
    }
    for name, (_, how) in measured.items():
        log.info("Acceptance of %s: %s", name, how)
    return playbook.with_acceptance(measured)
