"""Acceptance rates from a retention experiment's measured uplift, instead of assumptions.

A playbook values an action at p(churn) x customer value x acceptance - cost, where acceptance
is the share of would-be churners the action keeps. An experiment measures exactly that: the
uplift (control churn - treated churn) over the control group's churn rate. An action whose
uplift interval lies wholly below 0 makes customers leave: it gets rate 0, so it is offered to
no one, and its source says it is harmful. Actions with too few outcomes keep their rates.
"""

from __future__ import annotations

import logging

from churn.playbook import Playbook
from history.experiments import ALL_SEGMENTS, ExperimentResult, Uplift

log = logging.getLogger(__name__)


def uplift_playbook(playbook: Playbook, result: ExperimentResult) -> Playbook:
    measured = {}
    for uplift in result.uplifts:
        if uplift.segment != ALL_SEGMENTS or uplift.action not in playbook.actions:
            continue
        if uplift.verdict == "too few outcomes" or uplift.uplift is None:
            log.info("Uplift of %s: too few outcomes in %s; its rate stays as it was",
                     uplift.action, result.experiment)  # fmt: skip
            continue
        measured[uplift.action] = (_rate(uplift), _source(uplift, result.experiment))
        log.info("Uplift of %s: %s", uplift.action, measured[uplift.action][1])
    return playbook.with_acceptance(measured)


def _rate(uplift: Uplift) -> float:
    if uplift.verdict == "harmful" or not uplift.control_churn_rate:
        return 0.0
    assert uplift.uplift is not None
    return min(1.0, max(0.0, uplift.uplift / uplift.control_churn_rate))


def _source(uplift: Uplift, experiment: str) -> str:
    flag = "HARMFUL, offered to no one; " if uplift.verdict == "harmful" else ""
    return (
        f"{flag}experiment {experiment}: uplift {100 * (uplift.uplift or 0):+.1f} pts, 95% "
        f"interval {100 * (uplift.uplift_low or 0):+.1f} to {100 * (uplift.uplift_high or 0):+.1f}"
        f", {uplift.treated:,} treated and {uplift.control:,} control"
    )
