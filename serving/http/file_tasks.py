"""Scoring uploaded files as background tasks: a few at once per worker, each with a time limit,
results kept on disk and streamed from there.

Each file is scored by `python -m scoring` in a child process at lower CPU priority: in the
worker itself, a big file would hold the GIL for seconds and `/predict` would be shed.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.http.errors import SCORING_FAILED, send_error

log = logging.getLogger(__name__)

RESULT_ID = re.compile(r"[0-9a-f]{32}")
RESULT_FILES = ("scored.csv", "summary.json", "summary.html")
TOO_MANY = "Too many files are being scored right now; submit it again in a minute."


class FileTaskError(Exception):
    """A message for the client, one line, no traceback."""


@dataclass(frozen=True)
class ScoredFile:
    result_id: str
    folder: Path


class FileTasks:
    def __init__(self, folder: Path | None, limit: int, timeout_s: float, keep_s: float) -> None:
        self.folder = folder or Path(tempfile.gettempdir()) / "churn-scored-files"
        self.timeout_s = timeout_s
        self.keep_s = keep_s
        self.limit = limit
        self._running = 0
        self._lock = threading.Lock()
        # Model folders that tasks are scoring with, and those to delete once none is.
        self._using: Counter[Path] = Counter()
        self._unwanted: set[Path] = set()

    @property
    def busy(self) -> bool:
        return self._running >= self.limit

    def score(
        self, upload: Path, model_dir: Path, record_as: tuple[str, str] | None = None
    ) -> ScoredFile:
        """Score `upload` with the model in `model_dir`, recording the rows in the prediction
        history as that (name, version) if given; a user's mistake, or a worker that is already
        scoring as many files as it may, is a FileTaskError."""
        with self._lock:
            if self.busy:
                raise FileTaskError(TOO_MANY)
            self._running += 1
            self._using[model_dir] += 1
        try:
            return self._score(upload, model_dir, record_as)
        finally:
            with self._lock:
                self._running -= 1
                self._using[model_dir] -= 1
                done_with = not self._using[model_dir] and model_dir in self._unwanted
                if done_with:
                    self._unwanted.discard(model_dir)
            if done_with:
                shutil.rmtree(model_dir.parent, ignore_errors=True)

    def delete_when_unused(self, model_dir: Path) -> None:
        """Delete the folder holding `model_dir` (a version follow mode downloaded) now, or,
        if a task is scoring a file with it, once the last such task ends."""
        with self._lock:
            if self._using[model_dir]:
                self._unwanted.add(model_dir)
                return
        shutil.rmtree(model_dir.parent, ignore_errors=True)

    def _score(
        self, upload: Path, model_dir: Path, record_as: tuple[str, str] | None
    ) -> ScoredFile:
        self._forget_old_results()
        result_id = uuid.uuid4().hex
        folder = self.folder / result_id
        folder.mkdir(parents=True)
        command = [sys.executable, "-m", "scoring", "--data", str(upload)]
        command += ["--out", str(folder / "scored.csv"), "--summary", str(folder)]
        command += ["--model-uri", str(model_dir)]
        if record_as is not None:
            command += ["--record", "--source", "file"]
            command += ["--model-name", record_as[0], "--model-version", record_as[1]]
        try:
            done = subprocess.run(
                ["nice", "-n", "10", *command],
                capture_output=True,
                text=True,
                check=False,
                timeout=self.timeout_s,
            )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise FileTaskError(
                f"Scoring took longer than {self.timeout_s:.0f} s and was stopped."
            ) from exc
        if done.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            message = _client_message(done.returncode, done.stderr)
            # The client never saw the temporary path the upload was saved to.
            message = message.replace(str(upload), "the uploaded file")
            raise FileTaskError(message[:1].upper() + message[1:])
        return ScoredFile(result_id, folder)

    def path_of(self, result_id: str, name: str) -> Path | None:
        if not RESULT_ID.fullmatch(result_id) or name not in RESULT_FILES:
            return None
        path = self.folder / result_id / name
        return path if path.is_file() else None

    def _forget_old_results(self) -> None:
        if not self.folder.exists():
            return
        oldest = time.time() - self.keep_s
        for result in self.folder.iterdir():
            if result.is_dir() and result.stat().st_mtime < oldest:
                shutil.rmtree(result, ignore_errors=True)


def _client_message(returncode: int, stderr: str) -> str:
    """The child's own one-line message for a user's mistake (exit code 2); otherwise a generic
    one, and the details go to the log."""
    lines = stderr.strip().splitlines()
    if returncode == 2 and lines and lines[-1].startswith("error: "):
        return lines[-1].removeprefix("error: ")
    log.error("Scoring a file failed with exit code %d:\n%s", returncode, stderr[-5000:])
    return SCORING_FAILED


class FileTaskLimit:
    """ASGI middleware: a submission to a worker already scoring as many files as it may gets a
    429 at once. (Two submissions racing for the last slot both pass here; the second task then
    fails with the same message.)"""

    def __init__(self, app: ASGIApp, tasks: FileTasks, submit_path: str) -> None:
        self.app = app
        self.tasks = tasks
        self.submit_path = submit_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.submit_path and self.tasks.busy:
            await send_error(send, 429, TOO_MANY, [(b"retry-after", b"60")])
            return
        await self.app(scope, receive, send)


def task_result(scored: ScoredFile, summary: dict[str, Any]) -> dict[str, Any]:
    base = f"/scored_files/{scored.result_id}"
    return {
        "result_id": scored.result_id,
        "scored_file": f"{base}/scored.csv",
        "summary_page": f"{base}/summary.html",
        "summary": summary,
    }
