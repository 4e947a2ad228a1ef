"""Insights fit the table they were trained on: a Telco-shaped and a bank-shaped one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.features import infer_spec
from churn.model import ChurnModel
from churn.playbook import NO_ACTION, Situation
from training.data import validate
from training.playbooks import choose_playbook
from training.segmentation import MIN_SHARE
from training.settings import TrainingSettings
from training.synth import synthesize, synthesize_bank
from training.train import Split, fit_candidates, fit_insight, split

SHAPES = {
    "telco": (synthesize, "Churn", "customerID"),
    "bank": (synthesize_bank, "Exited", "CustomerId"),
}


@pytest.fixture(scope="module", params=sorted(SHAPES))
def shaped(request: pytest.FixtureRequest) -> tuple[str, ChurnModel, Split]:
    make, target, id_column = SHAPES[request.param]
    settings = TrainingSettings(catboost_iterations=120)  # type: ignore[call-arg]
    table = validate(make(3000, 11), target, id_column, min_rows=100)
    spec = infer_spec(table.features, id_column, target)
    data = split(table, seed=42)
    prepared = data.prepared(spec)
    playbook = choose_playbook(spec)
    result = max(fit_candidates(spec, prepared, 42, settings), key=lambda r: r.validation.roc_auc)
    model = ChurnModel(
        spec,
        result.candidate.estimator,
        result.candidate.name,
        result.threshold,
        result.tiers,
        fit_insight(result, spec, prepared, 42, settings, playbook),
    )
    return request.param, model, data


def test_the_playbook_is_the_one_written_for_the_table(
    shaped: tuple[str, ChurnModel, Split],
) -> None:
    shape, model, _ = shaped
    assert model.insight.playbook.name == shape


def test_every_recommended_action_comes_from_a_rule_naming_only_the_tables_columns(
    shaped: tuple[str, ChurnModel, Split],
) -> None:
    _, model, data = shaped
    features = model.spec.prepare(data.test)
    decisions = model.decide(data.test)
    assert (decisions.action != NO_ACTION).any()
    situation = Situation(
        decisions.tier,
        decisions.decile,
        decisions.segment_id,
        _top_reasons(model, features),
        features,
    )
    columns = set(data.test.columns)
    for rule in model.insight.playbook.rules:
        offered = rule.matches(situation) & np.isin(decisions.action, rule.offer)
        if offered.any():
            assert rule.columns <= columns, rule.name


def test_every_segment_name_is_true_of_most_of_its_members_on_the_training_split(
    shaped: tuple[str, ChurnModel, Split],
) -> None:
    _, model, data = shaped
    features = model.spec.prepare(data.train)
    segment_of = model.insight.segments.assign(features)
    for profile in model.insight.segments.profiles:
        members = segment_of == profile.segment_id
        assert profile.traits, f"segment {profile.segment_id} is named by no trait"
        for trait in profile.traits:
            share = float(trait.holds(features)[members].mean())
            assert share >= MIN_SHARE, f"{profile.name!r}: {trait.phrase!r} holds for {share:.0%}"
            assert share == pytest.approx(trait.share, abs=0.02)


def test_the_riskiest_segment_has_id_0(shaped: tuple[str, ChurnModel, Split]) -> None:
    _, model, data = shaped
    segment_of = model.insight.segments.assign(model.spec.prepare(data.train))
    observed = pd.Series(data.y_train).groupby(segment_of).mean()
    assert observed.idxmax() == 0
    assert model.insight.segments.profiles[0].churn_rate == max(
        p.churn_rate for p in model.insight.segments.profiles
    )


def test_flags_are_named_as_flags_not_as_numbers(shaped: tuple[str, ChurnModel, Split]) -> None:
    _, model, _ = shaped
    phrases = [t.phrase for p in model.insight.segments.profiles for t in p.traits]
    assert not any(
        word in phrase for phrase in phrases for word in ("HasCrCard", "IsActiveMember", "low-")
    ), phrases


def _top_reasons(model: ChurnModel, features: object) -> np.ndarray:
    from churn.explain import contributions

    matrix, _ = contributions(model.insight.explainer, model.spec, features)  # type: ignore[arg-type]
    return np.array(model.spec.names, dtype=object)[matrix.argmax(axis=1)]
