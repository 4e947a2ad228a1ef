"""The pepper file beside an SQLite key store: made once, the same for every process."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from churn.errors import UserError
from serving.access.pepper import pepper_for

PROCESSES = 4
TRIALS = 25


def _read_after(barrier: Any, auth_db: str, peppers: Any) -> None:
    barrier.wait()
    peppers.put(pepper_for(auth_db, None))


def test_processes_starting_together_all_get_the_one_pepper_they_made(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for trial in range(TRIALS):
        auth_db = f"sqlite:///{tmp_path / str(trial) / 'keys.db'}"
        barrier, peppers = context.Barrier(PROCESSES), context.Queue()
        workers = [
            context.Process(target=_read_after, args=(barrier, auth_db, peppers))
            for _ in range(PROCESSES)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        seen = {peppers.get(timeout=5) for _ in workers}
        assert len(seen) == 1 and len(seen.pop()) == 64, f"trial {trial}"
        stored = tmp_path / str(trial) / "keys.pepper"
        assert stored.stat().st_mode & 0o777 == 0o600
        assert [path.name for path in stored.parent.iterdir()] == ["keys.pepper"]


def test_a_configured_pepper_wins_and_a_shared_database_needs_one(tmp_path: Path) -> None:
    assert pepper_for(f"sqlite:///{tmp_path / 'keys.db'}", SecretStr("set")) == b"set"
    with pytest.raises(UserError, match="CHURN_AUTH_PEPPER must be set"):
        pepper_for("postgresql://keys@db/keys", None)
