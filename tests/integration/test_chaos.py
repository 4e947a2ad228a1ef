"""`make chaos` as the suite runs it: every fault against the production set-up, each promise
checked by the fault suite itself (chaos/suite.py); here with shorter outages."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.command import main
from chaos.faults import faults

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]


def test_every_fault_keeps_the_services_promises(customers_csv: Path, tmp_path: Path) -> None:
    table = tmp_path / "chaos.md"
    status = main(
        ["--data", str(customers_csv), "--outage", "6", "--folder", str(tmp_path / "stack"),
         "--out", str(table)]
    )  # fmt: skip
    rows = table.read_text().splitlines()[2:]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == [f.name for f in faults()]
    assert status == 0, table.read_text()
