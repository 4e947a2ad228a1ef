"""Traits: what a segment's name claims, phrased for people and checkable on the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.features import MISSING_CATEGORY, infer_spec
from churn.traits import Trait, binary_levels, flag_phrase
from training.segmentation import candidate_traits, defining_traits


@pytest.mark.parametrize(
    ("feature", "is_set", "phrase"),
    [
        ("IsActiveMember", True, "active member"),
        ("IsActiveMember", False, "not active member"),
        ("HasCrCard", True, "with cr card"),
        ("HasCrCard", False, "without cr card"),
        ("Partner", False, "no partner"),
        ("PaperlessBilling", True, "paperless billing"),
        ("has_mobile_app", False, "without mobile app"),
    ],
)
def test_flags_read_as_words(feature: str, is_set: bool, phrase: str) -> None:
    assert flag_phrase(feature, is_set) == phrase


@pytest.mark.parametrize(
    ("trait", "phrase"),
    [
        (Trait("Contract", "level", "Month-to-month"), "Month-to-month"),
        (Trait("OnlineSecurity", "level", "No"), "no online security"),
        (Trait("NumOfProducts", "level", "1"), "NumOfProducts 1"),
        (Trait("tenure", "at_most", 12.0), "tenure 12 or less"),
        (Trait("Balance", "at_least", 110_000.0), "Balance 110,000 or more"),
        (Trait("MonthlyCharges", "at_least", 0.25), "MonthlyCharges 0.25 or more"),
        (Trait("HasCrCard", "flag", False), "without cr card"),
    ],
)
def test_each_kind_of_trait_has_a_phrase(trait: Trait, phrase: str) -> None:
    assert trait.phrase == phrase


def test_a_trait_holds_where_its_phrase_says_and_never_for_a_missing_value() -> None:
    features = pd.DataFrame(
        {
            "tenure": [3.0, 12.0, 13.0, np.nan],
            "Partner": ["Yes", "No", MISSING_CATEGORY, "Yes"],
            "IsActiveMember": [1.0, 0.0, np.nan, 1.0],
        }
    )
    assert Trait("tenure", "at_most", 12.0).holds(features).tolist() == [True, True, False, False]
    assert Trait("tenure", "at_least", 12.0).holds(features).tolist() == [False, True, True, False]
    no_partner = Trait("Partner", "flag", False, ("Yes",))
    assert no_partner.holds(features).tolist() == [False, True, False, False]
    inactive = Trait("IsActiveMember", "flag", False)
    assert inactive.holds(features).tolist() == [False, True, False, False]


@pytest.mark.parametrize(
    ("levels", "set_levels"),
    [({"Yes", "No"}, ("Yes",)), ({"true", "false"}, ("true",)), ({"DSL", "No"}, None)],
)
def test_yes_no_columns_are_flags(levels: set[str], set_levels: tuple[str, ...] | None) -> None:
    assert binary_levels(levels) == set_levels


def test_a_segment_is_defined_by_what_most_of_its_members_have_and_few_others_do() -> None:
    rng = np.random.default_rng(0)
    rows = 1000
    members = np.arange(rows) < 200
    table = pd.DataFrame(
        {
            # 90% of members have a short tenure, against 28% of everyone.
            "tenure": np.where(members & (rng.random(rows) < 0.9), 3.0, rng.uniform(20, 70, rows)),
            # Half the members: common, but not most of them.
            "plan": np.where(members, rng.choice(["a", "b"], rows), "c"),
            # Everyone is active: true of members, but no more than of anyone.
            "IsActiveMember": np.ones(rows),
        }
    )
    spec = infer_spec(table)
    candidates = candidate_traits(spec, table)
    holds = np.array([trait.holds(table) for trait in candidates])
    [trait] = defining_traits(candidates, holds, members)
    assert (trait.feature, trait.kind) == ("tenure", "at_most")
    assert trait.share >= 0.6
    assert trait.holds(table)[members].mean() == pytest.approx(trait.share, abs=1e-4)
