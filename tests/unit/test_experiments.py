"""Retention experiments: who is held back, and what the uplift report recovers from outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from churn.errors import UserError
from churn.experiment import Experiment, ExperimentSettings
from churn.model import Decisions
from churn.playbook import NO_ACTION, load_playbook
from history.experiments import (
    ALL_SEGMENTS,
    ExperimentResult,
    Uplift,
    difference_interval,
    measure,
    uplift_table,
    verdict_z,
)
from history.records import ScoredBatch, rows_of
from history.settings import HistorySettings
from history.sinks import sink_for
from history.store import History
from training.outcomes import store_outcomes
from training.uplift_playbook import uplift_playbook

DECIDED_AT = datetime(2026, 9, 1, tzinfo=UTC)
OBSERVED_AT = DECIDED_AT + timedelta(days=30)
CALL = "retention_call"
ROOT = Path(__file__).resolve().parents[2]


def _decisions(actions: list[str], segments: list[str]) -> Decisions:
    count = len(actions)
    return Decisions(
        probability=np.full(count, 0.6),
        churn=np.ones(count, dtype=bool),
        tier=np.full(count, "high", dtype=object),
        decile=np.ones(count, dtype=int),
        segment_id=np.zeros(count, dtype=int),
        segment=np.array(segments, dtype=object),
        action=np.array(actions, dtype=object),
        expected_value=np.full(count, 40.0),
        customer_value=np.full(count, 800.0),
    )


def _history(tmp_path: Path) -> History:
    return History.open(HistorySettings(url=f"sqlite:///{tmp_path / 'history.db'}"))


def _record(history: History, ids: list[str | None], decisions: Decisions) -> None:
    assert decisions.experiment is not None and decisions.treatment is not None
    assert decisions.held_back_action is not None
    predictions = [
        {
            "customer_id": customer,
            "churn_probability": 0.6,
            "churn": True,
            "risk_tier": "high",
            "decile": 1,
            "segment": segment,
            "action": action,
            "expected_value": value,
            "model_version": "1",
            "experiment": experiment,
            "treatment": treatment,
            "held_back_action": held_back,
        }
        for customer, segment, action, value, experiment, treatment, held_back in zip(
            ids, decisions.segment, decisions.action, decisions.expected_value,
            decisions.experiment, decisions.treatment, decisions.held_back_action, strict=True,
        )
    ]  # fmt: skip
    batch = ScoredBatch(
        DECIDED_AT, "file", "churn", predictions, [None] * len(ids),
        customer_values=decisions.customer_value.tolist(),
    )  # fmt: skip
    sink_for(history.engine).write(rows_of(batch, history.ids, 0.0))


def _outcomes(history: History, ids: list[str], churned: np.ndarray) -> None:
    outcomes = pd.DataFrame(
        {"customer_id": ids, "observed_at": pd.Timestamp(OBSERVED_AT), "churned": churned}
    )
    store_outcomes(history, outcomes)


def test_the_control_group_is_held_back_by_a_hash_of_experiment_and_customer() -> None:
    ids: list[str | None] = [f"c{n}" for n in range(5000)]
    decided = _decisions([CALL] * 5000, ["a"] * 5000)
    first = Experiment("winter", 0.1).hold_back(decided, ids)
    again = Experiment("winter", 0.1).hold_back(decided, ids[::-1])
    other = Experiment("spring", 0.1).hold_back(decided, ids)
    control = first.treatment == "control"
    assert 0.08 < control.mean() < 0.12
    # The same customer lands in the same group whatever its place in the batch.
    assert list(again.treatment[::-1]) == list(first.treatment)
    assert (other.treatment == "control").tolist() != control.tolist()
    assert set(first.action[control]) == {NO_ACTION}
    assert set(first.held_back_action[control]) == {CALL}
    assert set(first.expected_value[control]) == {0.0}
    assert set(first.treatment[~control]) == {"treated"}
    assert set(first.held_back_action[~control]) == {None}
    assert set(first.experiment) == {"winter"}


def test_customers_without_an_id_or_an_action_are_in_no_group() -> None:
    decided = _decisions([CALL, NO_ACTION, CALL], ["a"] * 3)
    held = Experiment("winter", 1.0).hold_back(decided, [None, "c2", "c3"])
    assert held.treatment.tolist() == [None, None, "control"]
    assert held.action.tolist() == [CALL, NO_ACTION, NO_ACTION]
    assert held.experiment.tolist() == [None, None, "winter"]


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"CHURN_EXPERIMENT_NAME": "winter sale"}, "is not a plain word"),
        ({"CHURN_EXPERIMENT_NAME": "w", "CHURN_EXPERIMENT_CONTROL_SHARE": "1.5"}, "less than"),
        ({"CHURN_EXPERIMENT_CONTROL_SHARE": "0.1"}, "needs CHURN_EXPERIMENT_NAME"),
    ],
)
def test_bad_experiment_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], named: str
) -> None:
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=named):
        ExperimentSettings()


def test_the_report_recovers_a_true_uplift_and_a_null_one(tmp_path: Path) -> None:
    """20,000 customers, 10% held back; the call lowers churn by 8 points in one segment and
    does nothing in the other."""
    rng = np.random.default_rng(42)
    ids = [f"c{n}" for n in range(20_000)]
    segments = ["new month-to-month"] * 10_000 + ["loyal two-year"] * 10_000
    decided = Experiment("winter", 0.1).hold_back(_decisions([CALL] * 20_000, segments), ids)
    treated = decided.treatment == "treated"
    helped = treated & (np.array(segments) == "new month-to-month")
    churned = rng.random(20_000) < np.where(helped, 0.30 - 0.08, 0.30)
    history = _history(tmp_path)
    _record(history, list(ids), decided)
    _outcomes(history, ids, churned)

    result = measure(
        history.engine, "winter", DECIDED_AT - timedelta(days=1), OBSERVED_AT, 90,
        {CALL: 20.0}, min_outcomes=100,
    )  # fmt: skip
    by_segment = {row.segment: row for row in result.uplifts}
    assert set(by_segment) == {ALL_SEGMENTS, "new month-to-month", "loyal two-year"}
    assert result.with_outcome == 20_000 and result.unassigned_outcomes == 0
    works, idle = by_segment["new month-to-month"], by_segment["loyal two-year"]
    assert works.treated + works.control == 10_000 and 800 < works.control < 1200
    assert works.uplift_low is not None and works.uplift_high is not None
    assert works.uplift_low < 0.08 < works.uplift_high and works.uplift_low > 0
    assert works.verdict == "keeps customers"
    assert works.kept_per_1000_treated == pytest.approx(1000 * works.uplift)
    assert works.incremental_profit_per_treated == pytest.approx(works.uplift * 800 - 20)
    assert idle.uplift_low is not None and idle.uplift_high is not None
    assert idle.uplift_low < 0 < idle.uplift_high
    assert idle.verdict == "no clear effect"


def test_an_experiment_without_outcomes_or_customers_says_which(tmp_path: Path) -> None:
    history = _history(tmp_path)
    ids = [f"c{n}" for n in range(50)]
    _record(
        history,
        list(ids),
        Experiment("winter", 0.5).hold_back(_decisions([CALL] * 50, ["a"] * 50), ids),
    )
    window = (DECIDED_AT - timedelta(days=1), OBSERVED_AT)
    with pytest.raises(UserError, match="no outcome observed"):
        measure(history.engine, "winter", *window, 90, {}, 100)
    with pytest.raises(UserError, match="experiments recorded: winter"):
        measure(history.engine, "summer", *window, 90, {}, 100)
    # Outcomes of customers the experiment never assigned are left out and counted.
    _outcomes(history, [*ids, "stranger"], np.zeros(51, dtype=bool))
    result = measure(history.engine, "winter", *window, 90, {}, 100)
    assert result.unassigned_outcomes == 1 and result.with_outcome == 50
    assert {row.verdict for row in result.uplifts} == {"too few outcomes"}
    assert all(row.incremental_profit is None for row in result.uplifts)


def test_the_interval_of_a_difference_is_sound_at_the_edges() -> None:
    low, high = difference_interval(0, 10, 0, 10)
    assert low < 0 < high
    low, high = difference_interval(30, 100, 10, 100)
    assert 0 < low < 0.2 < high < 0.35


def _row(action: str, uplift: float, low: float, high: float, verdict: str) -> Uplift:
    return Uplift(action, ALL_SEGMENTS, 900, 100, 0.30 - uplift, 0.30, uplift, low, high,
                  1000 * uplift, None, None, verdict)  # type: ignore[arg-type]  # fmt: skip


def test_measured_uplift_replaces_the_assumed_acceptance_and_flags_harm() -> None:
    playbook = load_playbook(ROOT / "playbooks" / "generic.yaml")
    result = ExperimentResult(
        "winter", DECIDED_AT, OBSERVED_AT, {"treated": 900, "control": 100}, 1000, 0,
        [
            _row("retention_call", 0.06, 0.02, 0.10, "keeps customers"),
            _row("retention_offer", -0.05, -0.09, -0.01, "harmful"),
            _row("unknown_action", 0.05, 0.01, 0.09, "keeps customers"),
        ],
    )  # fmt: skip
    measured = uplift_playbook(playbook, result).actions
    assert measured["retention_call"].acceptance_rate == pytest.approx(0.06 / 0.30)
    assert "experiment winter: uplift +6.0 pts" in measured["retention_call"].acceptance_source
    assert measured["retention_offer"].acceptance_rate == 0.0
    assert measured["retention_offer"].acceptance_source.startswith("HARMFUL")
    too_few = ExperimentResult(
        "winter", DECIDED_AT, OBSERVED_AT, {}, 10, 0,
        [_row("retention_call", 0.5, -0.2, 0.9, "too few outcomes")],
    )  # fmt: skip
    assert uplift_playbook(playbook, too_few).actions == playbook.actions


def test_a_verdict_holds_for_every_row_of_the_report_together() -> None:
    assert verdict_z(1) == pytest.approx(1.96, abs=0.001)
    assert verdict_z(16) == pytest.approx(2.955, abs=0.001)
    # 1 of 16 rows at 95% looks helped by chance: +10 points, 95% interval above 0.
    rows = pd.DataFrame(
        {
            "action": CALL, "held_back_action": None, "segment": "a",
            "treatment": ["treated"] * 1000 + ["control"] * 100,
            "churned": [True] * 200 + [False] * 800 + [True] * 30 + [False] * 70,
            "customer_value": 100.0,
        }
    )  # fmt: skip
    alone = next(r for r in uplift_table(rows, {}, min_outcomes=50) if r.segment == "a")
    assert alone.uplift_low is not None and alone.uplift_low > 0
    assert alone.verdict == "keeps customers"
    others = [rows.assign(segment=f"s{n}") for n in range(15)]
    table = uplift_table(pd.concat([rows, *others]), {}, min_outcomes=50)
    together = next(r for r in table if r.segment == "a")
    assert (together.uplift_low, together.uplift_high) == (alone.uplift_low, alone.uplift_high)
    assert together.verdict == "no clear effect"
