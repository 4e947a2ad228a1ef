from pathlib import Path

import pytest

from loadtests.split_spread import main, spread, table
from training.data import Source
from training.synth import write_synthetic


def test_each_seed_is_its_own_split_and_the_same_seed_the_same_figures(tmp_path: Path) -> None:
    data = tmp_path / "customers.csv"
    write_synthetic(1500, 3, data)
    source = Source(str(data))
    first = spread(source, "Churn", "customerID", [0, 1])
    again = spread(source, "Churn", "customerID", [1])
    assert first[1] == again[0]
    assert first[0].test_roc_auc != first[1].test_roc_auc
    for result in first:
        assert set(result.test_roc_auc) == {"logistic_regression", "catboost"}
        assert result.winner in result.test_roc_auc and result.profit_pick in result.test_roc_auc
    lines = table(first)
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| 0", "| 1", "| mean", "| sd"]


def test_a_missing_table_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.csv"
    assert main(["--data", str(missing), "--target", "Churn", "--seeds", "1"]) == 2
    assert capsys.readouterr().err.strip() == f"Data file {missing} does not exist."
