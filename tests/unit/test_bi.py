"""The BI views on an SQLite history and their export by day; PostgreSQL in integration."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as ds
import pytest
import sqlalchemy as sa

from churn.errors import UserError
from history.bi_export import export
from history.records import ScoredBatch, rows_of
from history.settings import HistorySettings
from history.sinks import sink_for
from history.store import History
from training.outcomes import store_outcomes

MONDAY = datetime(2026, 11, 30, 9, tzinfo=UTC)


def _answer(customer: str, probability: float, action: str, **group: Any) -> dict[str, Any]:
    return {
        "customer_id": customer, "churn_probability": probability, "churn": probability >= 0.5,
        "risk_tier": "high" if probability >= 0.5 else "low", "decile": 1, "segment": "new",
        "action": action, "expected_value": 10.0, "model_version": "3",
        "experiment": group.get("experiment"), "treatment": group.get("treatment"),
        "held_back_action": group.get("held_back_action"),
    }  # fmt: skip


def _record(history: History, when: datetime, answers: list[dict[str, Any]], **batch: Any) -> None:
    scored = ScoredBatch(
        when, "api", "churn", answers, [None] * len(answers),
        customer_values=[1000.0] * len(answers), **batch,
    )  # fmt: skip
    sink_for(history.engine).write(rows_of(scored, history.ids, 0.0))


@pytest.fixture
def history(tmp_path: Path) -> History:
    return filled(History.open(HistorySettings(url=f"sqlite:///{tmp_path / 'history.db'}")))


def filled(history: History) -> History:
    """Two days of decisions, a shadow row and two outcomes."""
    _record(history, MONDAY, [_answer("a", 0.2, "no action"), _answer("b", 0.7, "call")])
    _record(
        history, MONDAY + timedelta(days=1),
        [
            _answer("a", 0.8, "no action", experiment="w", treatment="control",
                    held_back_action="call"),
            _answer("c", 0.6, "call", experiment="w", treatment="treated"),
        ],
    )  # fmt: skip
    # Recorded only, never answered: left out of every view.
    _record(history, MONDAY + timedelta(days=1), [_answer("b", 0.99, "call")], shadow=True,
            role="challenger")  # fmt: skip
    outcomes = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "observed_at": pd.Timestamp(MONDAY + timedelta(days=10)),
            "churned": [True, False],
        }
    )
    store_outcomes(history, outcomes)
    return history


def _view(history: History, name: str) -> pd.DataFrame:
    with history.engine.connect() as connection:
        view = pd.read_sql_query(sa.text(f"SELECT * FROM {name} ORDER BY day"), connection)
    return view.assign(day=view["day"].astype(str))


def test_one_row_per_customer_with_its_latest_answered_decision_and_outcome(
    history: History,
) -> None:
    customers = _view(history, "bi_customers").set_index("customer_id")
    assert sorted(customers.index) == ["a", "b", "c"]
    a, b = customers.loc["a"], customers.loc["b"]
    assert a["day"] == "2026-12-01" and a["treatment"] == "control"
    assert a["held_back_action"] == "call" and a["churned"] == 1
    assert a["revenue_at_risk"] == pytest.approx(0.8 * 1000)
    assert b["churn_probability"] == pytest.approx(0.7) and b["role"] == "champion"
    assert pd.isna(customers.loc["c", "churned"])


def test_daily_kpis_count_each_day_by_tier_segment_action_and_group(history: History) -> None:
    kpis = _view(history, "bi_daily_kpis")
    assert kpis["decisions"].sum() == 4
    monday = kpis[kpis["day"] == "2026-11-30"].set_index("action")
    assert monday.loc["call", "revenue_at_risk"] == pytest.approx(700)
    assert monday.loc["call", "with_outcome"] == 1
    assert monday.loc["call", "realised_churn_rate"] == 0.0
    tuesday = kpis[kpis["day"] == "2026-12-01"].set_index("treatment")
    assert tuesday.loc["control", "action"] == "no action"
    assert tuesday.loc["control", "realised_churn_rate"] == 1.0
    assert tuesday.loc["treated", "with_outcome"] == 0


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_the_views_are_exported_partitioned_by_day(
    history: History, tmp_path: Path, file_format: str
) -> None:
    out = tmp_path / "bi"
    done = export(history.engine, out, date(2026, 11, 1), date(2026, 12, 6), file_format, False)  # type: ignore[arg-type]
    assert done.rows == {"customers": 3, "daily_kpis": 4} and done.days == 2
    assert sorted(p.name for p in (out / "daily_kpis").iterdir()) == [
        "day=2026-11-30", "day=2026-12-01",
    ]  # fmt: skip
    if file_format == "parquet":
        table = ds.dataset(out / "customers", format="parquet", partitioning="hive").to_table()
        customers = table.to_pandas().set_index("customer_id")
    else:
        customers = pd.concat(
            pd.read_csv(path).assign(day=path.parent.name.removeprefix("day="))
            for path in sorted((out / "customers").rglob("*.csv"))
        ).set_index("customer_id")
    assert str(customers.loc["a", "day"]) == "2026-12-01"
    assert customers.loc["a", "treatment"] == "control"
    if file_format == "parquet":
        assert customers["churned"].dtype == "bool" or str(customers["churned"].dtype) == "boolean"


def test_an_export_names_what_is_wrong(history: History, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is after --until"):
        export(history.engine, tmp_path / "x", date(2026, 12, 2), date(2026, 12, 1), "csv", False)
    out = tmp_path / "bi"
    export(history.engine, out, date(2026, 12, 1), date(2026, 12, 1), "csv", False)
    with pytest.raises(UserError, match="--overwrite"):
        export(history.engine, out, date(2026, 12, 1), date(2026, 12, 1), "csv", False)
    again = export(history.engine, out, date(2026, 11, 30), date(2026, 11, 30), "csv", True)
    assert again.rows["customers"] == 1
    assert [p.name for p in (out / "customers").iterdir()] == ["day=2026-11-30"]
