"""The challenger's share, its shadow queue and its agreement gauges, without a model."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from cli.runner import settings_errors
from serving.model.agreement import RollingAgreement
from serving.model.challenger import Challenger
from serving.settings import ServingSettings

IDS = [f"customer-{n}" for n in range(2000)]


def challenger(share: float, salt: str = "salt", queue_customers: int = 100) -> Challenger:
    return Challenger("shadow", share, salt, queue_customers, record=None)


def test_a_customer_keeps_its_arm_whatever_request_it_comes_in() -> None:
    canary = challenger(0.2)
    first = canary.picked(IDS, ["request-a"] * len(IDS))
    again = canary.picked(IDS, [f"request-{n}" for n in range(len(IDS))])
    assert first == again
    assert 0.15 < sum(first) / len(IDS) < 0.25  # 400 expected, sd 18


def test_the_salt_reshuffles_the_arms_and_the_share_bounds_them() -> None:
    requests = [""] * len(IDS)
    assert challenger(0.5, "one").picked(IDS, requests) != challenger(0.5, "two").picked(
        IDS, requests
    )
    assert challenger(0.0).picked(IDS, requests) == [False] * len(IDS)
    assert challenger(1.0).picked(IDS, requests) == [True] * len(IDS)


def test_customers_without_an_id_take_their_request_id_arm() -> None:
    canary = challenger(0.5)
    requests = [f"request-{n}" for n in range(200)]
    by_request = canary.picked([None] * 200, requests)
    assert by_request == canary.picked(requests, [""] * 200)
    assert 0 < sum(by_request) < 200


def dropped() -> float:
    return REGISTRY.get_sample_value("churn_challenger_dropped_total") or 0.0


def test_past_its_queue_the_shadow_drops_new_customers_and_counts_them() -> None:
    shadow = challenger(1.0, queue_customers=10)  # not started: nothing takes from the queue
    before = dropped()
    answers: list[dict[str, Any]] = [{}] * 6
    shadow.shadow([object()] * 6, None, None, answers)
    shadow.shadow([object()] * 6, None, None, answers)
    shadow.shadow([object()] * 4, None, None, answers[:4])
    assert dropped() - before == 6


def answer(tier: str, action: str) -> dict[str, Any]:
    return {"risk_tier": tier, "action": action}


def agreement(what: str) -> float | None:
    return REGISTRY.get_sample_value("churn_challenger_agreement", {"what": what})


def test_agreement_covers_the_latest_customers_only() -> None:
    rolling = RollingAgreement(window=4)
    rolling.add([answer("high", "call")] * 4, [answer("low", "call")] * 4)
    assert agreement("risk_tier") == 0.0 and agreement("action") == 1.0
    rolling.add([answer("high", "call")] * 4, [answer("high", "none")] * 4)
    assert rolling.customers == 4
    assert agreement("risk_tier") == 1.0 and agreement("action") == 0.0


def test_in_shadow_a_share_under_one_queues_only_the_customers_in_it() -> None:
    class Customer:
        def __init__(self, customer_id: str) -> None:
            self.customer_id = customer_id

    shadow = challenger(0.3, queue_customers=len(IDS))  # not started: the queue keeps them
    customers = [Customer(i) for i in IDS]
    answers: list[dict[str, Any]] = [{"customer_id": i} for i in IDS]
    shadow.shadow(customers, None, None, answers)
    picked = shadow.picked(IDS, [""] * len(IDS))
    queued = [s.champion_answers for s in shadow._queue]
    assert len(queued) == 1
    in_share = [i for i, pick in zip(IDS, picked, strict=True) if pick]
    assert [answer["customer_id"] for answer in queued[0]] == in_share


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"CHURN_CHALLENGER_MODE": "shadow"}, "CHURN_CHALLENGER_MODE=shadow needs CHURN_CHALL"),
        ({"CHURN_CHALLENGER_SHARE": "1.5"}, "CHURN_CHALLENGER_SHARE: Input should be less than"),
        ({"CHURN_CHALLENGER_MODE": "live"}, "CHURN_CHALLENGER_MODE: Input should be 'off', 'sh"),
    ],
)  # fmt: skip
def test_a_bad_challenger_setting_is_one_line_naming_the_variable(
    environment: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as error:
        ServingSettings()
    assert [line for line in settings_errors(error.value) if message in line]
