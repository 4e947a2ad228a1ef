"""A log line every few seconds while a job runs: each active stage's finished tasks and the
rows its finished tasks scored."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from pyspark import Accumulator
from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, spark: SparkSession, rows_done: Accumulator[int], every_s: float) -> None:
        self.context = spark.sparkContext
        self.rows_done = rows_done
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spark-progress", daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        tracker = self.context.statusTracker()
        while not self._stop.wait(self.every_s):
            for stage_id in tracker.getActiveStageIds():
                stage = tracker.getStageInfo(stage_id)
                if stage is not None:
                    log.info(
                        "Stage %d (%s): %d of %d tasks done, %d running; %s rows scored",
                        stage_id,
                        stage.name.split(" at ")[0],
                        stage.numCompletedTasks,
                        stage.numTasks,
                        stage.numActiveTasks,
                        f"{self.rows_done.value:,}",
                    )
