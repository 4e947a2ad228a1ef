from __future__ import annotations

import pandas as pd

from training.synth import synthesize

TELCO_COLUMNS = [
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
    "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
    "TechSupport", "StreamingTV", "StreamingMovies", "Contract", "PaperlessBilling",
    "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn",
]  # fmt: skip


def _rate(table: pd.DataFrame, column: str) -> pd.Series:
    return (table["Churn"] == "Yes").groupby(table[column]).mean()


def test_the_same_seed_writes_the_same_table() -> None:
    pd.testing.assert_frame_equal(synthesize(500, 3), synthesize(500, 3))
    assert not synthesize(500, 3).equals(synthesize(500, 4))


def test_it_has_the_telco_schema_and_unique_ids() -> None:
    table = synthesize(2000, 1)
    assert list(table.columns) == TELCO_COLUMNS
    assert table["customerID"].is_unique
    assert table.loc[table["tenure"] == 0, "TotalCharges"].isna().all()


def test_churn_follows_the_business_rules() -> None:
    table = synthesize(50_000, 1)
    assert 0.22 < (table["Churn"] == "Yes").mean() < 0.28
    contract = _rate(table, "Contract")
    assert contract["Month-to-month"] > contract["One year"] > contract["Two year"]
    internet = _rate(table, "InternetService")
    assert internet["Fiber optic"] > internet["DSL"]
    payment = _rate(table, "PaymentMethod")
    assert payment["Electronic check"] > payment["Credit card (automatic)"]
    support = _rate(table, "TechSupport")
    assert support["No"] > support["Yes"]
    short = table["tenure"] < 6
    assert (table.loc[short, "Churn"] == "Yes").mean() > (
        table.loc[~short, "Churn"] == "Yes"
    ).mean()
