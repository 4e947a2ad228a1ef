"""What every Spark task runs: the registered version's own batch path over the task's rows.

A task scores its Arrow batches with `score_chunk`, the function `python -m scoring` uses, so a
row gets the same decision on Spark as in one process. With recording on, each batch's rows go
to the history in one transaction with the batch's place in the job, so a retried task or a
rerun of the job records no batch twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from churn.experiment import Experiment
    from churn.model import ChurnModel
    from history.settings import HistorySettings
    from scoring.record import FileRecorder

log = logging.getLogger(__name__)

# Where a batch job has got to in each input partition is kept as a stream consumer keeps its
# offsets: partition = the Spark partition, offset = the next batch number.
JOB_GROUP_PREFIX = "spark-job:"
JOB_TOPIC = "spark"
MODEL_COLUMNS = ("model_name", "model_version")

_loaded: dict[str, ChurnModel] = {}


@dataclass(frozen=True)
class Recording:
    job_id: str
    history: HistorySettings


@dataclass(frozen=True)
class TaskPlan:
    """Everything a task needs, sent with the job: no task reads the driver's disk."""

    archive: str  # the model's archive, as added with SparkContext.addArchive
    model_name: str
    model_version: str
    with_reasons: bool
    columns: tuple[str, ...]  # the output columns, in order
    recording: Recording | None = None
    rows_done: Any = None  # an Accumulator[int] the driver's progress lines read
    experiment: Experiment | None = None


def score_partition(plan: TaskPlan, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """mapInPandas's function: each input batch, scored, in the output columns' order."""
    from pyspark import TaskContext

    from scoring.score_file import score_chunk, typed_predictions
    from scoring.summary import Summary

    model = _model(plan.archive)
    recorder = _recorder(plan, model) if plan.recording else None
    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    try:
        for number, batch in enumerate(batches):
            scored = typed_predictions(
                score_chunk(model, batch, Summary(), plan.with_reasons, plan.experiment)
            )
            scored["model_name"] = plan.model_name
            scored["model_version"] = plan.model_version
            if recorder is not None:
                _record(recorder, scored, plan, partition, number)
            if plan.rows_done is not None:
                plan.rows_done.add(len(scored))
            yield scored[list(plan.columns)]
    finally:
        if recorder is not None:
            recorder.close()


def _model(archive: str) -> ChurnModel:
    """The archive's model, loaded once per Python worker (Spark reuses its workers)."""
    if archive not in _loaded:
        import mlflow
        from pyspark import SparkFiles

        _loaded[archive] = mlflow.pyfunc.load_model(SparkFiles.get(archive)).unwrap_python_model()
    return _loaded[archive]


def _recorder(plan: TaskPlan, model: ChurnModel) -> FileRecorder:
    from history.customer_ids import CustomerIds
    from history.database import engine_for
    from history.store import History
    from scoring.record import FileRecorder

    assert plan.recording is not None
    settings = plan.recording.history
    history = History(settings, engine_for(settings.url), CustomerIds.from_settings(settings))
    return FileRecorder(
        history,
        "batch",
        plan.model_name,
        plan.model_version,
        model.spec.names,
        model.spec.id_column,
        request_id=plan.recording.job_id,
    )


def _record(
    recorder: FileRecorder, scored: pd.DataFrame, plan: TaskPlan, partition: int, number: int
) -> None:
    from history.sinks import OffsetMovedError, StreamOffset

    assert plan.recording is not None
    offset = StreamOffset(
        JOB_GROUP_PREFIX + plan.recording.job_id,
        JOB_TOPIC,
        partition,
        number + 1,
        number if number else None,
    )
    try:
        recorder(scored, offsets=[offset])
    except OffsetMovedError:
        log.info("Partition %d batch %d was recorded before; not again", partition, number)
