"""Shared fixtures: a small synthetic customer table, and settings that keep training quick."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.synth import synthesize

SMALL_ROWS = 3000


@pytest.fixture(scope="session")
def customers() -> pd.DataFrame:
    return synthesize(SMALL_ROWS, seed=7)


@pytest.fixture(scope="session")
def customers_csv(tmp_path_factory: pytest.TempPathFactory, customers: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("data") / "customers.csv"
    customers.to_csv(path, index=False, na_rep=" ")
    return path
