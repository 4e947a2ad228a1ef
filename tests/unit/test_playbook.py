"""The playbook: rules written against columns, tier, decile, top reason and segment id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churn.errors import UserError
from churn.features import infer_spec
from churn.playbook import FEW_ROWS, NO_ACTION, Playbook, Situation, parse_playbook
from training.campaign import Acceptance, measured_playbook, read_campaign
from training.playbooks import SHIPPED, choose_playbook, fitted_to
from training.synth import synthesize, synthesize_bank

PLAYBOOK: dict[str, Any] = {
    "version": "test",
    "actions": {
        "call": {"cost": 10, "acceptance_rate": 0.5},
        "discount": {"cost": 100, "acceptance_rate": 0.8},
    },
    "rules": [
        {"when": {"tier": ["high"]}, "offer": ["discount", "call"]},
        {"when": {"top_reason": ["Contract"]}, "offer": ["call"]},
        {"when": {"features": [{"feature": "plan", "in": ["fibre"]}]}, "offer": ["discount"]},
        {"when": {"decile": [1], "segment": [2]}, "offer": ["call"]},
        {
            "name": "short tenure",
            "when": {"features": [{"feature": "tenure", "below": 12}]},
            "offer": ["call"],
        },
    ],
}


def _situation(**values: Any) -> Situation:
    row = {"tier": "low", "decile": 5, "segment": 0, "reason": "", "plan": "dsl", "tenure": 40.0}
    row |= values
    return Situation(
        tier=np.array([row["tier"]], dtype=object),
        decile=np.array([row["decile"]]),
        segment_id=np.array([row["segment"]]),
        top_reason=np.array([row["reason"]], dtype=object),
        features=pd.DataFrame({"plan": [row["plan"]], "tenure": [row["tenure"]]}),
    )


@pytest.mark.parametrize(
    ("probability", "value", "situation", "action", "expected_value"),
    [
        (0.9, 1000.0, {"tier": "high"}, "discount", 0.9 * 1000 * 0.8 - 100),
        (0.9, 100.0, {"tier": "high"}, "call", 0.9 * 100 * 0.5 - 10),
        (0.3, 1000.0, {"reason": "Contract"}, "call", 0.3 * 1000 * 0.5 - 10),
        (0.3, 1000.0, {"plan": "fibre"}, "discount", 0.3 * 1000 * 0.8 - 100),
        (0.3, 1000.0, {"decile": 1, "segment": 2}, "call", 0.3 * 1000 * 0.5 - 10),
        (0.3, 1000.0, {"decile": 1, "segment": 1}, NO_ACTION, 0.0),  # both must hold
        (0.3, 1000.0, {"tenure": 11.0}, "call", 0.3 * 1000 * 0.5 - 10),
        (0.3, 1000.0, {"tenure": 12.0}, NO_ACTION, 0.0),  # below is strict
        (0.3, 1000.0, {"tenure": np.nan}, NO_ACTION, 0.0),  # a missing number meets no bound
        (0.01, 1000.0, {"tier": "high", "reason": "Contract"}, NO_ACTION, 0.0),  # all lose money
        (0.9, 1000.0, {}, NO_ACTION, 0.0),  # no rule holds
    ],
)
def test_the_playbook_picks_the_offered_action_worth_most(
    probability: float, value: float, situation: dict[str, Any], action: str, expected_value: float
) -> None:
    result = parse_playbook(PLAYBOOK).recommend(
        np.array([probability]), np.array([value]), _situation(**situation)
    )
    assert result.action[0] == action
    assert result.expected_value[0] == pytest.approx(expected_value)


def test_a_batch_gets_the_same_actions_as_its_customers_one_by_one() -> None:
    """The batch is decided with numpy, its customers one by one on Python values."""
    playbook = parse_playbook(PLAYBOOK)
    rng = np.random.default_rng(3)
    rows = 200
    assert rows >= FEW_ROWS
    features = pd.DataFrame(
        {"plan": rng.choice(["dsl", "fibre"], rows), "tenure": rng.uniform(0, 72, rows)}
    )
    situation = Situation(
        tier=rng.choice(np.array(["low", "medium", "high"], dtype=object), rows),
        decile=rng.integers(1, 11, rows),
        segment_id=rng.integers(0, 4, rows),
        top_reason=rng.choice(np.array(["Contract", "tenure", ""], dtype=object), rows),
        features=features,
    )
    probability, value = rng.random(rows), rng.uniform(10, 1000, rows)
    batch = playbook.recommend(probability, value, situation)
    for row in range(rows):
        one = Situation(
            situation.tier[row : row + 1],
            situation.decile[row : row + 1],
            situation.segment_id[row : row + 1],
            situation.top_reason[row : row + 1],
            features.iloc[row : row + 1],
        )
        alone = playbook.recommend(probability[row : row + 1], value[row : row + 1], one)
        assert alone.action[0] == batch.action[row]
        assert alone.expected_value[0] == batch.expected_value[row]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"actions": {}}, "'actions' and 'rules'"),
        (
            {**PLAYBOOK, "actions": {"call": {"cost": "lots", "acceptance_rate": 0.5}}},
            "numeric cost",
        ),
        ({**PLAYBOOK, "rules": [{"offer": ["refund"]}]}, "unknown actions"),
        (
            {**PLAYBOOK, "rules": [{"when": {"segment": ["Month-to-month"]}, "offer": ["call"]}]},
            "never by their name",
        ),
        ({**PLAYBOOK, "rules": [{"when": {"reason": ["tenure"]}, "offer": ["call"]}]}, "unknown"),
        ({**PLAYBOOK, "rules": [{"when": {"tier": ["urgent"]}, "offer": ["call"]}]}, "urgent"),
        ({**PLAYBOOK, "rules": [{"when": {"decile": [11]}, "offer": ["call"]}]}, "decile"),
        (
            {
                **PLAYBOOK,
                "rules": [{"when": {"features": [{"feature": "x", "near": 1}]}, "offer": ["call"]}],
            },
            "exactly one of",
        ),
        (
            {
                **PLAYBOOK,
                "rules": [
                    {"when": {"features": [{"feature": "x", "below": "ten"}]}, "offer": ["call"]}
                ],
            },
            "takes a number",
        ),
        (
            {
                **PLAYBOOK,
                "rules": [
                    {"when": {"features": [{"feature": "x", "in": [["a"]]}]}, "offer": ["call"]}
                ],
            },
            "takes text or numbers",
        ),
    ],
)
def test_a_broken_playbook_is_named(broken: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_playbook(broken)


def test_a_playbook_naming_absent_columns_is_refused_listing_them() -> None:
    spec = infer_spec(synthesize_bank(300, seed=1).drop(columns=["CustomerId", "Exited"]))
    telco = parse_playbook(_shipped("telco"), name="telco")
    with pytest.raises(UserError) as refused:
        fitted_to(telco, spec, "refuse")
    message = str(refused.value)
    for column in ("Contract", "PaymentMethod", "TechSupport", "tenure"):
        assert column in message
    assert "--playbook-missing=skip" in message


def test_skipping_drops_only_the_rules_naming_absent_columns() -> None:
    spec = infer_spec(synthesize_bank(300, seed=1).drop(columns=["CustomerId", "Exited"]))
    kept = fitted_to(parse_playbook(_shipped("telco"), name="telco"), spec, "skip")
    assert [rule.name for rule in kept.rules] == ["high risk"]
    assert "month-to-month contract" in kept.dropped_rules
    assert kept.columns <= set(spec.names)


def test_a_numeric_bound_on_a_categorical_column_is_refused() -> None:
    spec = infer_spec(pd.DataFrame({"plan": ["a", "b"] * 50, "tenure": range(100)}))
    playbook = parse_playbook(
        {
            **PLAYBOOK,
            "rules": [{"when": {"features": [{"feature": "plan", "below": 3}]}, "offer": ["call"]}],
        }
    )
    with pytest.raises(UserError, match="plan is categorical"):
        fitted_to(playbook, spec, "refuse")


@pytest.mark.parametrize(
    ("table", "chosen"),
    [
        (synthesize(300, seed=1).drop(columns=["customerID", "Churn"]), "telco"),
        (synthesize_bank(300, seed=1).drop(columns=["CustomerId", "Exited"]), "bank"),
        (pd.DataFrame({"plan": ["a", "b"] * 50, "spend": range(100)}), "generic"),
    ],
)
def test_training_picks_the_first_shipped_playbook_the_table_fits(
    table: pd.DataFrame, chosen: str
) -> None:
    playbook = choose_playbook(infer_spec(table))
    assert playbook.name == chosen
    assert playbook.columns <= set(table.columns)


def test_the_generic_playbook_names_no_column() -> None:
    assert parse_playbook(_shipped("generic")).columns == set()


def test_a_rule_naming_a_segment_by_trait_gets_the_ids_of_segments_with_that_trait() -> None:
    playbook = parse_playbook(
        {**PLAYBOOK, "rules": [{"when": {"segment_trait": ["tenure"]}, "offer": ["call"]}]}
    )
    resolved = playbook.for_segments({0: {"tenure", "Contract"}, 1: {"plan"}, 2: {"tenure"}})
    assert resolved.rules[0].segments == frozenset({0, 2})


def test_campaign_results_give_acceptance_rates_with_an_interval_and_name_bad_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "campaign.csv"
    rows = ["customer_id,action,accepted"]
    rows += [f"c{n},call,{'yes' if n < 30 else 'no'}" for n in range(100)]
    rows += ["c1,call,yes", ",call,no", "c200,,yes", "c201,call,maybe", "c202,refund,yes"]
    path.write_text("\n".join(rows) + "\n")
    results = read_campaign(path, "customer_id")
    assert [(bad.row, bad.message.split(":")[0]) for bad in results.bad_rows] == [
        (101, "the same customer and action as row 2"),
        (102, "customer_id"),
        (103, "action"),
        (104, "accepted"),
    ]
    call = results.acceptance["call"]
    assert (call.offered, call.accepted, call.rate) == (100, 30, 0.3)
    low, high = call.interval
    assert low == pytest.approx(0.2189, abs=1e-4) and high == pytest.approx(0.3958, abs=1e-4)
    measured = measured_playbook(parse_playbook(PLAYBOOK), results)
    assert measured.actions["call"].acceptance_rate == 0.3
    assert "30 of 100 accepted" in measured.actions["call"].acceptance_source
    assert measured.actions["discount"].acceptance_source == "assumed"


def test_the_wilson_interval_stays_inside_0_and_1() -> None:
    none, every = Acceptance("call", 10, 0).interval, Acceptance("call", 10, 10).interval
    assert none[0] == 0.0 and 0.0 < none[1] < 0.35
    assert every[1] == pytest.approx(1.0) and every[1] <= 1.0 and 0.65 < every[0] < 1.0


def _shipped(name: str) -> dict[str, Any]:
    import yaml

    source: dict[str, Any] = yaml.safe_load((SHIPPED / f"{name}.yaml").read_text())
    return source


def test_every_shipped_playbook_parses() -> None:
    for path in sorted(SHIPPED.glob("*.yaml")):
        assert isinstance(parse_playbook(_shipped(path.stem)), Playbook)
