from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn import features
from churn.columns import Columns, object_array
from churn.errors import UserError
from churn.features import MISSING_CATEGORY, FeatureSpec, category_levels, infer_spec


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "plan": ["basic", "pro", None, "pro"],
            "senior": [0, 1, 0, 1],
            "total": ["10.5", " ", "30", "40.25"],  # Telco's TotalCharges: text with blanks
            "active": [True, False, True, True],
        }
    )


def test_kinds_are_inferred_from_values() -> None:
    spec = infer_spec(_frame())
    kinds = {feature.name: feature.kind for feature in spec.features}
    assert kinds == {
        "plan": "categorical",
        "senior": "numeric",
        "total": "numeric",
        "active": "categorical",
    }


def test_the_user_can_override_a_kind() -> None:
    spec = infer_spec(_frame(), categorical=["senior"])
    assert spec.categorical == ["plan", "senior", "active"]


def test_an_override_naming_no_column_is_refused() -> None:
    with pytest.raises(UserError, match=r"'tenure': not a feature column"):
        infer_spec(_frame(), numeric=["tenure"])


def test_forcing_text_to_numeric_names_the_bad_values() -> None:
    with pytest.raises(UserError, match=r"'plan' cannot be numeric.*'basic'"):
        infer_spec(_frame(), numeric=["plan"])


def test_blank_numeric_cells_become_missing_and_missing_categories_a_level() -> None:
    prepared = infer_spec(_frame()).prepare(_frame())
    assert np.isnan(prepared.loc[1, "total"])
    assert prepared["total"].dtype == np.float64
    assert prepared.loc[2, "plan"] == MISSING_CATEGORY


def test_prepare_names_missing_columns() -> None:
    spec = infer_spec(_frame())
    with pytest.raises(UserError, match=r"Missing feature columns: total"):
        spec.prepare(_frame().drop(columns=["total"]))


def test_the_spec_round_trips_through_json_ready_dicts() -> None:
    spec = infer_spec(_frame(), id_column="id", target="Churn")
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert spec.example == {"plan": "pro", "senior": 0.5, "total": 30.0, "active": "True"}


def test_the_public_example_is_made_up_from_the_spec_and_is_no_training_row() -> None:
    spec = infer_spec(_frame())
    rows = spec.prepare(_frame()).astype(object).to_dict(orient="records")
    assert spec.example not in rows
    assert spec.example == {
        f.name: f.median if f.kind == "numeric" else f.levels[0] for f in spec.features
    }


def test_json_columns_are_prepared_as_the_same_frame_would_be() -> None:
    """The service's path (object arrays of what the client sent) and training's agree."""
    raw = _frame().astype(object).where(_frame().notna(), None)
    raw.loc[0, "plan"] = " basic "
    columns = Columns({name: object_array(list(raw[name])) for name in raw.columns}, len(raw))
    spec = infer_spec(_frame())
    from_columns = spec.prepare_columns(columns)
    expected = spec.prepare(_frame())
    assert len(from_columns) == len(expected)
    for name in spec.names:
        np.testing.assert_array_equal(from_columns[name], expected[name].to_numpy())


def test_prepared_columns_name_missing_columns() -> None:
    spec = infer_spec(_frame())
    columns = Columns({"plan": object_array(["basic"])}, 1)
    with pytest.raises(UserError, match=r"Missing feature columns: senior, total, active"):
        spec.prepare_columns(columns)


def test_a_long_text_column_gets_the_levels_and_kind_of_its_cells_one_by_one() -> None:
    cells = np.array([" a", "a ", "", "  ", None, np.nan, "b", "12", " 3.5 ", "x"], dtype=object)
    column = pd.Series(cells[np.random.default_rng(3).integers(0, len(cells), 20_000)])
    assert len(column) >= features.FACTORIZE_FROM
    one_by_one = [features._level(value) for value in column]
    assert category_levels(column).tolist() == one_by_one
    text = column.dropna().astype(str).str.strip()
    text = text[text != ""]
    expected = pd.to_numeric(text, errors="coerce").notna().mean()
    assert features._numeric_share(column) == pytest.approx(expected, abs=1e-12)
