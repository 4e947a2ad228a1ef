"""Scoring whole files: good and bad rows, CSV and Parquet, and the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from churn.errors import UserError
from churn.model import ChurnModel
from scoring.score_file import PREDICTION_COLUMNS, score_file


def _file_with_bad_rows(customers: pd.DataFrame, path: Path) -> pd.DataFrame:
    table = customers.drop(columns=["Churn"]).head(500).astype(str)
    table.loc[10, "TotalCharges"] = "lots"
    table.loc[20, "tenure"] = "forever"
    table.loc[30, "TotalCharges"] = " "  # blank is missing, not bad
    table.to_csv(path, index=False)
    return table


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_bad_rows_are_reported_and_every_good_row_is_scored(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, tmp_path: Path, suffix: str
) -> None:
    table = _file_with_bad_rows(customers, tmp_path / "in.csv")
    out = tmp_path / f"scored{suffix}"
    result = score_file(trained["logistic_regression"], tmp_path / "in.csv", out, chunk_rows=128)
    scored = (
        pd.read_csv(out, dtype={"customerID": str}) if suffix == ".csv" else pd.read_parquet(out)
    )

    assert list(scored.columns) == [*table.columns, *PREDICTION_COLUMNS]
    assert scored["customerID"].tolist() == table["customerID"].tolist()
    assert scored.loc[10, "error"] == "TotalCharges: 'lots' is not a number"
    assert scored.loc[20, "error"] == "tenure: 'forever' is not a number"
    good = scored["error"].isna()
    assert good.sum() == 498
    assert scored.loc[good, "churn_probability"].between(0, 1).all()
    assert scored.loc[~good, "churn_probability"].isna().all()
    assert scored.loc[good, "top_reasons"].str.count(";").eq(2).all()

    summary = result.summary.as_dict()
    assert summary["customers_scored"] == 498 and summary["rows_rejected"] == 2
    assert summary["rejection_reasons"] == {
        "TotalCharges: not a number": 1,
        "tenure: not a number": 1,
    }
    assert sum(summary["by_risk_tier"].values()) == 498
    assert sum(summary["by_decile"].values()) == 498


def test_probabilities_match_the_model(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, tmp_path: Path
) -> None:
    source = customers.drop(columns=["Churn"]).head(100)
    source.to_csv(tmp_path / "in.csv", index=False, na_rep=" ")
    score_file(trained["catboost"], tmp_path / "in.csv", tmp_path / "out.csv", with_reasons=False)
    scored = pd.read_csv(tmp_path / "out.csv")
    expected = trained["catboost"].churn_probability(source)
    assert scored["churn_probability"].to_numpy() == pytest.approx(expected, abs=1e-12)


def test_a_missing_column_is_named(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, tmp_path: Path
) -> None:
    customers.drop(columns=["Contract"]).head(10).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(UserError, match="lacks the feature columns Contract"):
        score_file(trained["catboost"], tmp_path / "in.csv", tmp_path / "out.csv")


def test_the_summary_page_is_self_contained(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, tmp_path: Path
) -> None:
    _file_with_bad_rows(customers, tmp_path / "in.csv")
    result = score_file(trained["logistic_regression"], tmp_path / "in.csv", tmp_path / "out.csv")
    json_path, html_path = result.summary.write(tmp_path / "summary")
    page = html_path.read_text()
    assert "<svg" in page and "Revenue at risk" in page and "tenure: not a number" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert json.loads(json_path.read_text())["rows_rejected"] == 2
