"""A Spark job that scores a customer table with one registered version, on the driver's side:
checks that fail before any task runs, the scoring stage, the summary and the atomic commit."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException, PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as spark_types

from churn.errors import UserError
from churn.experiment import Experiment
from history.settings import HistorySettings
from registry.settings import RegistrySettings
from scoring.spark.hadoop_files import HadoopFiles
from scoring.spark.model_archive import ModelArchive, pack_model
from scoring.spark.output import Output
from scoring.spark.progress import Progress
from scoring.spark.session import ship_code, shipping_folder, spark_session
from scoring.spark.summary import summary_of
from scoring.spark.tasks import MODEL_COLUMNS, Recording, TaskPlan, score_partition
from scoring.summary import render_html

log = logging.getLogger(__name__)

InputFormat = Literal["auto", "parquet", "csv", "table"]
PREDICTION_TYPES: dict[str, spark_types.DataType] = {
    "churn_probability": spark_types.DoubleType(),
    "churn": spark_types.BooleanType(),
    "risk_tier": spark_types.StringType(),
    "decile": spark_types.DoubleType(),
    "segment_id": spark_types.DoubleType(),
    "segment": spark_types.StringType(),
    "action": spark_types.StringType(),
    "expected_value": spark_types.DoubleType(),
    "customer_value": spark_types.DoubleType(),
    "experiment": spark_types.StringType(),
    "treatment": spark_types.StringType(),
    "held_back_action": spark_types.StringType(),
    "top_reasons": spark_types.StringType(),
    "error": spark_types.StringType(),
    **{column: spark_types.StringType() for column in MODEL_COLUMNS},
}


@dataclass(frozen=True)
class JobOptions:
    data: str
    out: str
    model_uri: str | None = None
    master: str | None = None
    input_format: InputFormat = "auto"
    partition_by: tuple[str, ...] = ()
    reasons: bool = False
    keep_inputs: bool = False
    job_id: str = field(
        default_factory=lambda: f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    )
    overwrite: bool = False
    progress_every_s: float = 10.0
    experiment: Experiment | None = None


@dataclass(frozen=True)
class JobResult:
    out: str
    summary: dict[str, object]


def run_job(
    options: JobOptions, registry: RegistrySettings, history: HistorySettings | None = None
) -> JobResult:
    """Score `options.data` into `options.out`, recording every scored row in `history` if
    given; UserError, before any task, for what a user can fix (no such input, a missing
    column, an empty table, no champion, an existing --out)."""
    started = time.perf_counter()
    if history is not None:
        from history.store import History

        History.open(history)  # reachable and migrated before any task writes to it
    folder = shipping_folder()
    model = pack_model(options.model_uri or registry.champion_uri, registry, folder, options.job_id)
    spark = spark_session(options.master, f"churn scoring {options.job_id}")
    files = HadoopFiles(spark)
    output = Output.beside(files, options.out, options.job_id, options.overwrite)
    customers = _read(spark, options.data, options.input_format)
    _check(customers, options, model)
    plan = _plan(spark, model, customers, options, history)
    customers = customers.select(*_read_columns(customers, options, model))
    ship_code(spark, folder, options.job_id)
    spark.sparkContext.addArchive(str(model.path))
    log.info(
        "Scoring %s with %s version %s into %s (job %s)",
        options.data, model.name, model.version, output.target, options.job_id,
    )  # fmt: skip
    try:
        with Progress(spark, plan.rows_done, options.progress_every_s):
            scored = customers.mapInPandas(
                lambda batches: score_partition(plan, batches), _schema(customers, plan)
            )
            _write(scored, options, output)
        summary = _summary(spark, output, options, model, started)
        output.commit(files)
    except BaseException:
        output.discard(files)
        raise
    return JobResult(output.target, summary)


def _read(spark: SparkSession, data: str, input_format: InputFormat) -> DataFrame:
    kind = input_format if input_format != "auto" else _format_of(data)
    try:
        if kind == "csv":
            # Text in, text out, as `python -m scoring` reads a CSV file: a blank cell is "",
            # not null (no CSV cell holds the NUL that stands for null here).
            return spark.read.csv(data, header=True, nullValue="\u0000", emptyValue="")
        if kind == "table":
            return spark.table(data)
        return spark.read.parquet(data)
    except AnalysisException as error:
        raise UserError(f"Cannot read {data}: {str(error).splitlines()[0]}") from None


def _format_of(data: str) -> InputFormat:
    lowered = data.lower().rstrip("/")
    if lowered.endswith((".csv", ".csv.gz")):
        return "csv"
    if "/" in lowered or lowered.endswith((".parquet", ".pq")):
        return "parquet"
    return "table"


def _plan(
    spark: SparkSession,
    model: ModelArchive,
    customers: DataFrame,
    options: JobOptions,
    history: HistorySettings | None,
) -> TaskPlan:
    if options.keep_inputs:
        inputs = [name for name in customers.columns if name not in PREDICTION_TYPES]
    else:
        inputs = _identity_columns(customers, options, model)
    return TaskPlan(
        archive=model.path.name,
        model_name=model.name,
        model_version=model.version,
        with_reasons=options.reasons,
        columns=(*inputs, *PREDICTION_TYPES),
        recording=Recording(options.job_id, history) if history is not None else None,
        rows_done=spark.sparkContext.accumulator(0),
        experiment=options.experiment,
    )


def _identity_columns(customers: DataFrame, options: JobOptions, model: ModelArchive) -> list[str]:
    """What the output keeps of the input by default: the id and the partition columns."""
    kept = [model.id_column] if model.id_column in customers.columns else []
    return [*kept, *(name for name in options.partition_by if name not in kept)]


def _read_columns(customers: DataFrame, options: JobOptions, model: ModelArchive) -> list[str]:
    """The input columns a task needs: Spark reads (and moves to Python) nothing else."""
    if options.keep_inputs:
        return customers.columns
    wanted = {*model.features, *_identity_columns(customers, options, model)}
    return [name for name in customers.columns if name in wanted]


def _check(customers: DataFrame, options: JobOptions, model: ModelArchive) -> None:
    missing = [name for name in model.features if name not in customers.columns]
    if missing:
        raise UserError(
            f"{options.data} lacks the feature columns {', '.join(missing)}; "
            f"it has {', '.join(customers.columns)}."
        )
    unknown = [name for name in options.partition_by if name not in customers.columns]
    if unknown:
        raise UserError(f"--partition-by {', '.join(unknown)}: no such input column.")
    if customers.isEmpty():
        raise UserError(f"{options.data} has no rows.")


def _schema(customers: DataFrame, plan: TaskPlan) -> spark_types.StructType:
    types = {f.name: f.dataType for f in customers.schema.fields} | PREDICTION_TYPES
    return spark_types.StructType(
        [spark_types.StructField(name, types[name], True) for name in plan.columns]
    )


def _write(scored: DataFrame, options: JobOptions, output: Output) -> None:
    try:
        scored.write.partitionBy(*options.partition_by).parquet(output.staging)
    except (PySparkException, Py4JJavaError) as error:
        # A task's own error (a history that refused a write, say) is the last line.
        cause = [line for line in str(error).strip().splitlines() if line.strip()][-1]
        raise UserError(
            f"The job failed and wrote nothing to {output.target}: {cause.strip()}"
        ) from error


def _summary(
    spark: SparkSession, output: Output, options: JobOptions, model: ModelArchive, started: float
) -> dict[str, object]:
    counted = summary_of(spark, output.staging, options.data).as_dict()
    summary = {
        **counted,
        "output": output.target,
        "job_id": options.job_id,
        "model_name": model.name,
        "model_version": model.version,
        "seconds": round(time.perf_counter() - started, 1),
    }
    files = HadoopFiles(spark)
    files.write_text(output.summary_file("summary.json"), json.dumps(summary, indent=2))
    files.write_text(output.summary_file("summary.html"), render_html(counted))
    return summary
