"""File-scoring tasks: a time limit, a cap per worker, one-line errors, results kept on disk."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest

from serving.http.file_tasks import (
    SCORING_FAILED,
    TOO_MANY,
    FileTaskError,
    FileTaskLimit,
    FileTasks,
    ScoredFile,
)
from tests.unit.test_fast_predict import other_routes


def _tasks(tmp_path: Path, **overrides: float) -> FileTasks:
    settings = {"limit": 1, "timeout_s": 60.0, "keep_s": 3600.0} | overrides
    return FileTasks(tmp_path / "results", int(settings["limit"]), settings["timeout_s"],
                     settings["keep_s"])  # fmt: skip


def test_a_task_past_its_time_limit_is_stopped_with_a_clear_message(tmp_path: Path) -> None:
    upload = tmp_path / "customers.csv"
    upload.write_text("a,b\n1,2\n")
    with pytest.raises(FileTaskError, match=r"^Scoring took longer than 0 s and was stopped\.$"):
        _tasks(tmp_path, timeout_s=0.01).score(upload, tmp_path / "model")
    assert list((tmp_path / "results").iterdir()) == []


def test_a_users_mistake_reaches_the_client_as_one_line(tmp_path: Path) -> None:
    upload = tmp_path / "customers.csv"
    upload.write_text("a,b\n1,2\n")
    with pytest.raises(FileTaskError) as error:
        _tasks(tmp_path).score(upload, tmp_path / "no-model-here")
    assert str(error.value).startswith("Cannot load ")
    assert "\n" not in str(error.value) and "Traceback" not in str(error.value)


def test_a_crash_is_reported_without_its_traceback() -> None:
    from serving.http.file_tasks import _client_message

    traceback = 'Traceback (most recent call last):\n  File "x.py", line 1\nKeyError: "secret"'
    assert _client_message(1, traceback) == SCORING_FAILED


def test_a_worker_scores_at_most_its_limit_at_once_and_says_so(tmp_path: Path) -> None:
    tasks = _tasks(tmp_path, limit=1)
    upload = tmp_path / "customers.csv"
    upload.write_text("a\n1\n")
    errors: list[FileTaskError] = []

    def score_in_the_background() -> None:
        try:
            tasks.score(upload, tmp_path / "no-model-here")
        except FileTaskError as error:
            errors.append(error)

    first = threading.Thread(target=score_in_the_background)
    first.start()
    deadline = time.monotonic() + 10
    while not tasks.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tasks.busy
    with pytest.raises(FileTaskError, match="Too many files"):
        tasks.score(upload, tmp_path / "no-model-here")

    async def submit() -> httpx.Response:
        transport = httpx.ASGITransport(
            app=FileTaskLimit(other_routes, tasks, "/score_file/submit")
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            return await client.post("/score_file/submit", content=b"file")

    response = asyncio.run(submit())
    assert response.status_code == 429 and response.headers["retry-after"] == "60"
    assert response.json() == {"error": TOO_MANY}
    first.join()
    assert not tasks.busy and str(errors[0]).startswith("Cannot load")
    assert asyncio.run(submit()).status_code == 204  # passed on to the service


@pytest.mark.parametrize(
    ("result_id", "name"),
    [
        ("../../etc", "passwd"),
        ("0" * 32, "../scored.csv"),
        ("0" * 32, "other.txt"),
        ("x", "scored.csv"),
    ],
)
def test_only_result_files_can_be_fetched(tmp_path: Path, result_id: str, name: str) -> None:
    assert _tasks(tmp_path).path_of(result_id, name) is None


def test_a_swapped_out_versions_files_outlive_the_file_task_scoring_with_them(
    tmp_path: Path,
) -> None:
    started, release = threading.Event(), threading.Event()
    seen_while_scoring: list[bool] = []

    class SlowTasks(FileTasks):
        def _score(
            self, upload: Path, model_dir: Path, record_as: tuple[str, str] | None
        ) -> ScoredFile:
            started.set()
            release.wait(10)
            seen_while_scoring.append((model_dir / "MLmodel").exists())
            return ScoredFile("done", tmp_path)

    tasks = SlowTasks(tmp_path / "results", 2, 60, 3600)
    old = tmp_path / "v1-abc" / "model"
    old.mkdir(parents=True)
    (old / "MLmodel").write_text("a model")
    task = threading.Thread(target=tasks.score, args=(tmp_path / "upload.csv", old))
    task.start()
    assert started.wait(5)
    tasks.delete_when_unused(old)  # the swap happens while the file is scored
    assert old.exists()
    release.set()
    task.join(5)
    assert seen_while_scoring == [True] and not old.parent.exists()

    unused = tmp_path / "v2-def" / "model"
    unused.mkdir(parents=True)
    tasks.delete_when_unused(unused)
    assert not unused.parent.exists()
