from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn.errors import UserError
from training.data import Source, encode_labels, read_table, require_columns, validate


def _table(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(rows)],
            "plan": rng.choice(["basic", "pro"], rows),
            "tenure": rng.integers(0, 72, rows),
            "Churn": rng.choice(["Yes", "No"], rows),
        }
    )


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["Yes", "no", "YES", "No"], [1, 0, 1, 0]),
        (["True", "false", "TRUE", "False"], [1, 0, 1, 0]),
        (["1", "0", "1", "0"], [1, 0, 1, 0]),
        ([1, 0, 1, 0], [1, 0, 1, 0]),
        (["Y", "n", "y", "N"], [1, 0, 1, 0]),
        ([True, False, True, False], [1, 0, 1, 0]),
    ],
)
def test_labels_are_read_case_insensitively(labels: list[object], expected: list[int]) -> None:
    y, mapping = encode_labels(pd.Series(labels), "Churn")
    assert y.tolist() == expected
    assert set(mapping.values()) == {0, 1}


def test_a_non_binary_target_shows_the_offending_values_with_counts() -> None:
    with pytest.raises(UserError, match=r"not binary.*'\?' \(2\)"):
        encode_labels(pd.Series(["Yes", "No", "?", "?", "No"]), "Churn")


def test_a_single_class_target_is_refused() -> None:
    with pytest.raises(UserError, match=r"only one class"):
        encode_labels(pd.Series(["No"] * 20), "Churn")


def test_a_missing_target_lists_the_columns_that_exist() -> None:
    with pytest.raises(UserError, match=r"'churned' is not in the table.*id, plan, tenure, Churn"):
        validate(_table(), "churned", "id", min_rows=10)


def test_too_few_rows_are_refused() -> None:
    with pytest.raises(UserError, match=r"Too few rows.*40 labelled rows, at least 200"):
        validate(_table(40), "Churn", "id", min_rows=200)


def test_duplicated_ids_are_named() -> None:
    table = _table()
    table.loc[5, "id"] = "c1"
    with pytest.raises(UserError, match=r"duplicated ids.*'c1'"):
        validate(table, "Churn", "id", min_rows=10)


def test_the_id_and_target_are_kept_out_of_the_features() -> None:
    labelled = validate(_table(), "Churn", "id", min_rows=10)
    assert list(labelled.features.columns) == ["plan", "tenure"]
    assert labelled.ids is not None and labelled.ids.iloc[0] == "c0"
    assert labelled.label_mapping == {"No": 0, "Yes": 1}


def test_rows_with_a_blank_label_are_dropped_not_fatal() -> None:
    table = _table().astype({"Churn": object})
    table.loc[[1, 2], "Churn"] = None
    assert len(validate(table, "Churn", "id", min_rows=10).target) == 298


def test_the_features_share_the_tables_columns_rather_than_copy_them() -> None:
    table = _table()
    features = validate(table, "Churn", "id", min_rows=10).features
    for name in features:
        assert np.shares_memory(features[name].to_numpy(), table[name].to_numpy()), name
    assert features.index.equals(pd.RangeIndex(len(table)))


def test_dropping_a_blank_label_keeps_features_labels_and_ids_in_step() -> None:
    table = _table().astype({"Churn": object})
    table.loc[[0, 7], "Churn"] = " "
    labelled = validate(table, "Churn", "id", min_rows=10)
    kept = table.drop(index=[0, 7]).reset_index(drop=True)
    assert labelled.features.equals(kept[["plan", "tenure"]])
    assert labelled.ids is not None and labelled.ids.equals(kept["id"])
    assert labelled.target.tolist() == (kept["Churn"] == "Yes").astype(int).tolist()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b'a,b\n"1,2\n', "Could not parse"),
        (b"\xff\xfe\x00garbage\x00", "Could not parse"),
    ],
)
def test_unreadable_files_get_a_clear_message(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "table.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_table(Source(str(path)))


def test_a_corrupt_parquet_file_gets_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "table.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(UserError, match=r"Could not parse"):
        read_table(Source(str(path)))


@pytest.mark.parametrize("index", [None, pd.Index([7, 8, 9], name="row"), pd.Index([7, 8, 9])])
def test_a_parquet_file_reads_column_by_column_as_pandas_would_without_its_index(
    tmp_path: Path, index: pd.Index | None
) -> None:
    written = pd.DataFrame(
        {
            "tenure": pd.array([1, None, 3], dtype="Int64"),
            "plan": pd.Categorical(["basic", "pro", "basic"]),
            "note": pd.array(["x", None, "z"], dtype="string"),
            "since": pd.date_range("2024-01-01", periods=3, tz="UTC"),
            "Churn": ["Yes", "No", None],
            "charges": [1.5, np.nan, 2.0],
        },
        index=index,
    )
    path = tmp_path / "table.parquet"
    written.to_parquet(path)
    read = read_table(Source(str(path)))
    pd.testing.assert_frame_equal(read, written.reset_index(drop=True))
    assert isinstance(read.index, pd.RangeIndex)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_target_and_id_are_checked_against_the_header_alone(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"table{suffix}"
    if suffix == ".csv":
        _table().to_csv(path, index=False)
    else:
        _table().to_parquet(path)
    require_columns(Source(str(path)), "Churn", "id")
    with pytest.raises(UserError, match=r"target column 'Churned' .* Columns present: id, plan"):
        require_columns(Source(str(path)), "Churned", "id")
    with pytest.raises(UserError, match=r"id column 'customerID' is not in the table"):
        require_columns(Source(str(path)), "Churn", "customerID")


def test_the_header_check_reads_no_row(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text('id,plan,Churn\nc1,basic,Yes\n"c2,pro,No\n')
    require_columns(Source(str(path)), "Churn", "id")
    with pytest.raises(UserError, match="Could not parse"):
        read_table(Source(str(path)))


def test_sql_tables_and_queries_are_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'customers.db'}"
    _table().to_sql("customers", url, index=False)
    assert len(read_table(Source(url, table="customers"))) == 300
    query = "select * from customers where plan = 'pro'"
    assert set(read_table(Source(url, query=query))["plan"]) == {"pro"}


def test_a_missing_sql_table_is_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'customers.db'}"
    _table().to_sql("customers", url, index=False)
    with pytest.raises(UserError, match=r"'clients' not found"):
        read_table(Source(url, table="clients"))
