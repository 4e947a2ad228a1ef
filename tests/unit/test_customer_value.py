"""Customer value: a compiled column formula, or a constant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.customer_value import CustomerValue
from churn.errors import UserError

FEATURES = pd.DataFrame(
    {
        "MonthlyCharges": [10.0, np.nan, 30.0],
        "Monthly fee": [1.0, 2.0, 0.0],
        "Contract": ["Two year", "One year", "Month-to-month"],
    }
)


def test_a_formula_is_computed_per_customer_and_missing_values_fall_back_to_the_constant() -> None:
    value = CustomerValue("MonthlyCharges * 12 + 2 ** 2", constant=500.0)
    np.testing.assert_array_equal(value.of(FEATURES), [124.0, 500.0, 364.0])


def test_backticks_name_a_column_that_is_not_an_identifier() -> None:
    value = CustomerValue("-(`Monthly fee` - 2) / `Monthly fee`", constant=7.0)
    np.testing.assert_array_equal(value.of(FEATURES), [1.0, 0.0, 7.0])  # 2 / 0 is no value


def test_without_a_formula_every_customer_is_worth_the_constant() -> None:
    np.testing.assert_array_equal(CustomerValue(None, 250.0).of(FEATURES), [250.0] * 3)


@pytest.mark.parametrize(
    ("formula", "named"),
    [
        ("Revenue * 12", "'Revenue'"),
        ("Contract * 12", "'Contract' is not numeric"),
        ("__import__('os').getcwd()", "not Call"),
        ("MonthlyCharges *", "Not a formula"),
        ("MonthlyCharges * 'x'", "'x' is not a number"),
        ("9**9**9**9", "too large to compute"),
        ("1/0", "divides by zero"),
        ("MonthlyCharges / (2 - 2)", "divides by zero"),
        ("10**400", "constant exponent"),
        ("MonthlyCharges ** MonthlyCharges", "constant exponent"),
        ("1" + "0" * 400 + " * MonthlyCharges", "too large"),
        ("(-8) ** 0.5 * MonthlyCharges", "not a real number"),
    ],
)
def test_a_formula_that_cannot_be_computed_fails_training_with_its_reason(
    formula: str, named: str
) -> None:
    with pytest.raises(UserError, match="Cannot compute customer value") as error:
        CustomerValue(formula, 500.0).check(FEATURES)
    assert named in str(error.value)
    assert "Columns: MonthlyCharges, Monthly fee, Contract." in str(error.value)
