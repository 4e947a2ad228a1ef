"""The history on an SQLite file: schema, reading back, retention, outcomes, realised metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr
from sklearn.metrics import average_precision_score, roc_auc_score

from churn.errors import UserError
from churn.model import ChurnModel
from history.records import ScoredBatch, rows_of
from history.schema import migrate, prune
from history.settings import HistorySettings
from history.sinks import sink_for
from history.store import History
from scoring.record import FileRecorder
from scoring.score_file import score_file
from training.data import Source
from training.evaluate import campaign_profit
from training.outcomes import read_outcomes, store_outcomes
from training.realised import matched_predictions, realised
from training.settings import Economics


def _history(tmp_path: Path, **settings: Any) -> History:
    return History.open(HistorySettings(url=f"sqlite:///{tmp_path / 'history.db'}", **settings))


def _record(history: History, when: datetime, scores: dict[str, float], version: str = "1") -> None:
    predictions = [
        {
            "customer_id": customer,
            "churn_probability": float(probability),
            "churn": bool(probability >= 0.5),
            "risk_tier": "high" if probability >= 0.5 else "low",
            "decile": 1,
            "segment": "s",
            "action": "call" if probability >= 0.5 else "no action",
            "expected_value": 1.0,
            "model_version": version,
        }
        for customer, probability in scores.items()
    ]
    batch = ScoredBatch(when, "api", "churn", predictions, [None] * len(predictions))
    sink_for(history.engine).write(rows_of(batch, history.ids, 0.0))


def test_migrations_apply_once(tmp_path: Path) -> None:
    history = _history(tmp_path)
    assert migrate(history.engine) == []


def test_a_customers_history_comes_newest_first_a_page_at_a_time(tmp_path: Path) -> None:
    history = _history(tmp_path)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for day in range(5):
        _record(history, start + timedelta(days=day), {"a": day / 10, "b": 0.9})
    first = history.customer_history("a", limit=2)
    assert [s["churn_probability"] for s in first.scores] == [0.4, 0.3]
    assert first.next_before == "2026-01-04T00:00:00.000000Z"
    rest = history.customer_history("a", limit=10, before=datetime.fromisoformat(first.next_before))
    assert [s["churn_probability"] for s in rest.scores] == [0.2, 0.1, 0.0]
    assert rest.next_before is None
    assert history.customer_history("nobody").scores == []


def test_the_summary_counts_each_day_by_tier_action_and_version(tmp_path: Path) -> None:
    history = _history(tmp_path)
    _record(history, datetime(2026, 1, 1, 23, tzinfo=UTC), {"a": 0.9, "b": 0.1})
    _record(history, datetime(2026, 1, 2, 1, tzinfo=UTC), {"a": 0.8}, version="2")
    days = history.summary(date(2026, 1, 1), date(2026, 1, 3))
    assert days == [
        {
            "day": "2026-01-01",
            "scored": 2,
            "by_model_version": {"1": 2},
            "by_risk_tier": {"high": 1, "low": 1},
            "by_segment": {"s": 2},
            "by_action": {"call": 1, "no action": 1},
        },
        {
            "day": "2026-01-02",
            "scored": 1,
            "by_model_version": {"2": 1},
            "by_risk_tier": {"high": 1},
            "by_segment": {"s": 1},
            "by_action": {"call": 1},
        },
    ]


def test_days_past_retention_are_dropped(tmp_path: Path) -> None:
    history = _history(tmp_path)
    _record(history, datetime(2026, 1, 1, tzinfo=UTC), {"old": 0.5})
    _record(history, datetime(2026, 3, 1, tzinfo=UTC), {"new": 0.5})
    assert prune(history.engine, retention_days=30, today=date(2026, 3, 2)) == 1
    assert history.customer_history("old").scores == []
    assert len(history.customer_history("new").scores) == 1


def test_hashed_ids_are_looked_up_by_the_raw_id_which_is_never_stored(tmp_path: Path) -> None:
    history = _history(tmp_path, hash_ids=True, id_salt=SecretStr("s3cret"))
    _record(history, datetime.now(UTC), {"7590-VHVEG": 0.7})
    assert len(history.customer_history("7590-VHVEG").scores) == 1
    assert b"7590-VHVEG" not in (tmp_path / "history.db").read_bytes()


def test_a_stored_digest_as_the_today_page_links_it_finds_the_customer(tmp_path: Path) -> None:
    history = _history(tmp_path, hash_ids=True, id_salt=SecretStr("s3cret"))
    now = datetime.now(UTC)
    _record(history, now - timedelta(hours=2), {"7590-VHVEG": 0.2})
    _record(history, now - timedelta(hours=1), {"7590-VHVEG": 0.9})
    [mover] = history.newly_high(now - timedelta(hours=3), now - timedelta(days=7))
    digest = str(mover["customer_id"])
    assert digest != "7590-VHVEG"
    assert len(history.customer_history(digest, stored=True).scores) == 2
    assert history.customer_history(digest).scores == []  # a raw id is hashed once more
    template = (Path(__file__).parents[2] / "console" / "templates" / "today.html").read_text()
    assert "/ui/customers?id={{ m.customer_id | urlencode }}&amp;stored=1" in template


def test_hashing_without_a_salt_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="CHURN_HISTORY_ID_SALT"):
        HistorySettings(hash_ids=True)


def test_bad_outcome_rows_are_named_by_row_and_every_good_row_is_loaded(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "id,Churn,seen\n"
        "0001,Yes,2026-02-01\n"
        "0002,maybe,2026-02-01\n"
        ",No,2026-02-01\n"
        "0004,no,not a date\n"
        "0005,No,2026-02-01T12:00:00Z\n"
        "0001,No,2026-02-01\n"
    )
    read = read_outcomes(Source(str(labels)), "id", "Churn", "seen")
    assert [(bad.row, bad.message) for bad in read.bad_rows] == [
        (2, "Churn: 'maybe' is not yes/no, true/false, 1/0 or y/n"),
        (3, "id: the customer id is empty"),
        (4, "seen: 'not a date' is not a date and time"),
        (6, "the same customer and time as an earlier row"),
    ]
    assert read.table["customer_id"].tolist() == ["0001", "0005"]
    assert read.table["churned"].tolist() == [True, False]
    history = _history(tmp_path)
    assert store_outcomes(history, read.table) == 2
    assert store_outcomes(history, read.table) == 2  # loading again replaces, not duplicates


def test_a_missing_outcome_column_is_named(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("id,Churn\n1,yes\n")
    with pytest.raises(UserError, match="'churned' is not in"):
        read_outcomes(Source(str(labels)), "id", "churned")


def test_realised_metrics_are_those_of_the_newest_prediction_in_the_window(
    tmp_path: Path,
) -> None:
    history = _history(tmp_path)
    rng = np.random.default_rng(3)
    customers = [f"c{n}" for n in range(400)]
    churned = rng.random(400) < 0.3
    scores = np.clip(churned * 0.3 + rng.random(400) * 0.7, 0, 1)
    observed = datetime(2026, 6, 1, tzinfo=UTC)
    # Too old to count, then the prediction that counts, then one after the outcome.
    _record(history, observed - timedelta(days=200), dict.fromkeys(customers, 0.99))
    _record(history, observed - timedelta(days=10), dict(zip(customers, scores, strict=True)))
    _record(history, observed + timedelta(days=1), dict.fromkeys(customers, 0.01))
    outcomes = pd.DataFrame(
        {"customer_id": customers, "observed_at": pd.Timestamp(observed), "churned": churned}
    )
    store_outcomes(history, outcomes)
    economics = Economics()
    [result] = realised(matched_predictions(history, "churn", window_days=90), economics)
    decided = scores >= 0.5
    assert result.customers == 400
    assert result.roc_auc == pytest.approx(roc_auc_score(churned, scores))
    assert result.pr_auc == pytest.approx(average_precision_score(churned, scores))
    assert result.precision == pytest.approx(churned[decided].mean())
    assert result.recall == pytest.approx(decided[churned].mean())
    assert result.profit_per_customer == pytest.approx(
        campaign_profit(churned.astype(int), decided, economics)
    )
    assert [b.customers for b in result.calibration] == [40] * 10
    assert result.calibration[0].predicted_rate > result.calibration[-1].predicted_rate


def test_a_scored_file_is_recorded_good_rows_only_with_reasons(
    trained: dict[str, ChurnModel], customers: pd.DataFrame, tmp_path: Path
) -> None:
    table = customers.drop(columns=["Churn"]).head(50).copy()
    table.loc[3, "tenure"] = "forever"
    table.to_csv(tmp_path / "in.csv", index=False)
    history = _history(tmp_path, feature_sample=1.0)
    model = trained["logistic_regression"]
    recorder = FileRecorder(history, "batch", "churn", "7", model.spec.names, "customerID")
    score_file(model, tmp_path / "in.csv", tmp_path / "out.csv", on_chunk=recorder)
    assert recorder.recorded == 49
    bad_id, good_id = str(table.loc[3, "customerID"]), str(table.loc[4, "customerID"])
    assert history.customer_history(bad_id).scores == []
    [score] = history.customer_history(good_id).scores
    assert score["model_version"] == "7" and score["source"] == "batch"
    assert len(score["reasons"]) == 3
