"""Files scored from the console: the job's state lives on disk, beside the scored files, so any
worker of the replica can show its progress and its result, whichever started it.

A job is a folder `<jobs>/<id>/` with the upload and `status.json`; the worker that took the
upload scores it in a thread of its own with serving/http/file_tasks.py (a child process at lower
priority, with its time limit and per-worker cap), then writes the result id or the error.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring.tables import is_parquet
from serving.http.file_tasks import FileTaskError, FileTasks

log = logging.getLogger(__name__)
JOB_ID_LENGTH = 32
MAX_REJECTED_SHOWN = 50


@dataclass(frozen=True)
class RejectedRow:
    row: int
    error: str


class FileJobs:
    def __init__(self, folder: Path, tasks: FileTasks, model_dir: Path) -> None:
        self.folder = folder
        self.tasks = tasks
        self.model_dir = model_dir

    def start(self, upload: Path, filename: str, record_as: tuple[str, str] | None) -> str:
        """A new job scoring `upload` (moved into the job's folder); its id."""
        self._forget_old_jobs()
        job_id = uuid.uuid4().hex
        folder = self.folder / job_id
        folder.mkdir(parents=True)
        suffix = ".parquet" if is_parquet(Path(filename)) else ".csv"
        kept = folder / f"upload{suffix}"
        upload.replace(kept)
        self._write(
            job_id,
            {
                "state": "running",
                "file": filename,
                "started": time.time(),
                "rows": _row_count(kept),
            },
        )
        threading.Thread(
            target=self._score,
            args=(job_id, kept, record_as),
            name=f"file-job-{job_id[:8]}",
            daemon=True,
        ).start()
        return job_id

    def status(self, job_id: str) -> dict[str, Any] | None:
        if len(job_id) != JOB_ID_LENGTH or not job_id.isalnum():
            return None
        try:
            status: dict[str, Any] = json.loads((self.folder / job_id / "status.json").read_text())
        except (OSError, ValueError):
            return None
        return status

    def rejected(self, result_id: str) -> list[RejectedRow]:
        """The first rows the scorer rejected, with their reasons (1 = the first data row)."""
        path = self.tasks.path_of(result_id, "scored.csv")
        if path is None:
            return []
        found = []
        for row, error in _errors(path):
            found.append(RejectedRow(row, error))
            if len(found) >= MAX_REJECTED_SHOWN:
                break
        return found

    def _score(self, job_id: str, upload: Path, record_as: tuple[str, str] | None) -> None:
        status = self.status(job_id) or {}
        try:
            scored = self.tasks.score(upload, self.model_dir, record_as)
        except FileTaskError as error:
            self._write(job_id, {**status, "state": "failed", "error": str(error)})
            return
        except Exception:
            log.exception("Scoring the console upload %s failed", job_id)
            self._write(
                job_id,
                {
                    **status,
                    "state": "failed",
                    "error": "Scoring failed; the server log has the details.",
                },
            )
            return
        finally:
            upload.unlink(missing_ok=True)
        summary = json.loads((scored.folder / "summary.json").read_text())
        self._write(
            job_id,
            {
                **status,
                "state": "done",
                "result_id": scored.result_id,
                "summary": summary,
                "finished": time.time(),
            },
        )

    def _forget_old_jobs(self) -> None:
        """Jobs live as long as the scored files they point at."""
        if not self.folder.exists():
            return
        oldest = time.time() - self.tasks.keep_s
        for job in self.folder.iterdir():
            if job.is_dir() and job.stat().st_mtime < oldest:
                shutil.rmtree(job, ignore_errors=True)

    def _write(self, job_id: str, status: dict[str, Any]) -> None:
        path = self.folder / job_id / "status.json"
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(status))
        partial.replace(path)  # readers never see half a file


def _row_count(path: Path) -> int | None:
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        with path.open("rb") as file:
            return max(sum(1 for _ in file) - 1, 0)
    except Exception:  # the scorer reports an unreadable file itself
        return None


def _errors(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        for row, record in enumerate(reader, start=1):
            error = record.get("error") or ""
            if error.strip():
                yield row, error
