"""Deterministic synthetic customer tables: the IBM Telco schema, or a retail bank's (the public
Churn_Modelling layout), so that insights are tried on more than one shape of table."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from scoring.tables import write_table

YES_NO = np.array(["No", "Yes"])
INTERNET = np.array(["DSL", "Fiber optic", "No"])
CONTRACTS = np.array(["Month-to-month", "One year", "Two year"])
PAYMENTS = np.array(
    ["Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)"]
)
INTERNET_ADDONS = (
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
)
# Chosen so that the default mix of customers churns at about 25%, like the real table (26.5%).
CHURN_INTERCEPT = -2.55
# The bank table churns at about 20%, as the public one does.
BANK_INTERCEPT = -2.8
GEOGRAPHIES = np.array(["France", "Germany", "Spain"])
Shape = Literal["telco", "bank"]


def synthesize(rows: int, seed: int) -> pd.DataFrame:
    """Build `rows` customers whose churn follows the business rules seen in the Telco table."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(3, rows, p=[0.55, 0.21, 0.24])
    tenure_mean = np.array([14.0, 40.0, 56.0])[contract]
    tenure = np.clip(rng.normal(tenure_mean, 16.0), 0, 72).round().astype(np.int64)
    internet = rng.choice(3, rows, p=[0.34, 0.44, 0.22])
    has_internet = internet != 2
    phone = rng.random(rows) < 0.9
    multiple_lines = np.where(
        phone, YES_NO[(rng.random(rows) < 0.45).astype(int)], "No phone service"
    )
    payment = rng.choice(4, rows, p=[0.34, 0.23, 0.22, 0.21])
    addons = {
        name: np.where(
            has_internet,
            YES_NO[(rng.random(rows) < rate).astype(int)],
            "No internet service",
        )
        for name, rate in zip(INTERNET_ADDONS, (0.37, 0.44, 0.44, 0.37, 0.49, 0.5), strict=True)
    }
    streaming = (addons["StreamingTV"] == "Yes").astype(int) + (addons["StreamingMovies"] == "Yes")
    monthly = (
        (
            np.array([45.0, 75.0, 20.0])[internet]
            + 10.0 * streaming
            + 5.0 * (multiple_lines == "Yes")
            + rng.normal(0.0, 4.0, rows)
        )
        .clip(18.0, 120.0)
        .round(2)
    )
    total = (monthly * tenure * rng.normal(1.0, 0.03, rows)).round(2)
    senior = (rng.random(rows) < 0.16).astype(np.int64)
    partner = rng.random(rows) < 0.48
    dependents = rng.random(rows) < np.where(partner, 0.5, 0.1)
    paperless = rng.random(rows) < 0.59
    no_tech_support = addons["TechSupport"] == "No"

    logit = (
        CHURN_INTERCEPT
        + np.array([0.9, -0.6, -1.9])[contract]
        + np.array([0.0, 0.8, -0.8])[internet]
        + np.array([0.7, 0.0, -0.2, -0.2])[payment]
        + 1.3 * np.exp(-tenure / 10.0)
        - 0.012 * tenure
        + 0.5 * no_tech_support
        + 0.3 * (addons["OnlineSecurity"] == "No")
        + 0.35 * senior
        + 0.2 * paperless
        - 0.15 * partner
        + rng.normal(0.0, 0.5, rows)
    )
    churn = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))

    return pd.DataFrame(
        {
            "customerID": _customer_ids(rng, rows),
            "gender": np.where(rng.random(rows) < 0.5, "Female", "Male"),
            "SeniorCitizen": senior,
            "Partner": YES_NO[partner.astype(int)],
            "Dependents": YES_NO[dependents.astype(int)],
            "tenure": tenure,
            "PhoneService": YES_NO[phone.astype(int)],
            "MultipleLines": multiple_lines,
            "InternetService": INTERNET[internet],
            **addons,
            "Contract": CONTRACTS[contract],
            "PaperlessBilling": YES_NO[paperless.astype(int)],
            "PaymentMethod": PAYMENTS[payment],
            "MonthlyCharges": monthly,
            # New customers have not been billed yet: blank, as in the real table.
            "TotalCharges": np.where(tenure == 0, np.nan, total),
            "Churn": YES_NO[churn.astype(int)],
        }
    )


def synthesize_bank(rows: int, seed: int) -> pd.DataFrame:
    """`rows` bank customers (CustomerId ... Exited, 0/1 flags as in the public table) whose
    churn rises with age, inactivity, a single product and a German address."""
    rng = np.random.default_rng(seed)
    geography = rng.choice(3, rows, p=[0.5, 0.25, 0.25])
    female = rng.random(rows) < 0.45
    age = np.clip(rng.lognormal(np.log(37.0), 0.25, rows), 18, 92).round().astype(np.int64)
    tenure = rng.integers(0, 11, rows)
    balance = (
        np.where(
            (rng.random(rows) < 0.36) & (geography != 1), 0.0, rng.normal(120_000, 30_000, rows)
        )
        .clip(0)
        .round(2)
    )
    products = rng.choice([1, 2, 3, 4], rows, p=[0.51, 0.46, 0.027, 0.003])
    has_card = (rng.random(rows) < 0.7).astype(np.int64)
    active = (rng.random(rows) < 0.52).astype(np.int64)
    logit = (
        BANK_INTERCEPT
        + 0.07 * (age - 38)
        + np.array([0.0, 0.75, 0.0])[geography]
        + 0.5 * female
        + 0.9 * (1 - active)
        + np.array([0.0, 0.6, -0.9, 2.6, 4.0])[products]
        + 0.25 * (balance > 0)
        - 0.02 * tenure
        + rng.normal(0.0, 0.4, rows)
    )
    exited = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(
        {
            "CustomerId": 15_000_000 + rng.permutation(max(rows, 1) * 10)[:rows],
            "CreditScore": np.clip(rng.normal(650, 97, rows), 350, 850).round().astype(np.int64),
            "Geography": GEOGRAPHIES[geography],
            "Gender": np.where(female, "Female", "Male"),
            "Age": age,
            "Tenure": tenure,
            "Balance": balance,
            "NumOfProducts": products,
            "HasCrCard": has_card,
            "IsActiveMember": active,
            "EstimatedSalary": rng.uniform(11.58, 199_992.48, rows).round(2),
            "Exited": exited,
        }
    )


def _customer_ids(rng: np.random.Generator, rows: int) -> np.ndarray:
    digits = rng.permutation(max(rows, 1) * 10)[:rows]
    letters = rng.integers(0, 26, size=(rows, 5)).astype(np.uint8) + ord("A")
    suffix = letters.view("S5").ravel().astype(str)
    return np.char.add(np.char.add(np.char.zfill(digits.astype(str), 7), "-"), suffix)


def write_synthetic(rows: int, seed: int, out: Path, shape: Shape = "telco") -> pd.DataFrame:
    table = synthesize(rows, seed) if shape == "telco" else synthesize_bank(rows, seed)
    write_table(table, out)
    return table
