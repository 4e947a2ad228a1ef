"""The Spark session a job runs in, and the project's code shipped to its executors."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import zipfile
from functools import cache
from pathlib import Path

from pyspark.sql import SparkSession

# What a task imports: the scoring paths, the runtime, and the history's writer for --record.
SHIPPED_PACKAGES = ("churn", "scoring", "history", "registry", "cli")
# Rows per Arrow batch handed to a task's scorer, as `python -m scoring` reads its chunks.
BATCH_ROWS = 50_000
ARROW_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"


def spark_session(
    master: str | None, app_name: str, conf: dict[str, str] | None = None
) -> SparkSession:
    """The session spark-submit configured, or a local one; column names are case-sensitive,
    so an input's `Churn` label and the output's `churn` decision are two columns."""
    launched_by_spark_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if not launched_by_spark_submit and (master or "local").startswith("local"):
        # Local workers run this Python, with its libraries, unless told otherwise.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).config("spark.sql.caseSensitive", "true")
    builder = builder.config("spark.ui.showConsoleProgress", "false")  # the job logs its own
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    if master:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    spark.conf.set("spark.sql.caseSensitive", "true")
    if not spark.sparkContext.getConf().contains(ARROW_BATCH):
        spark.conf.set(ARROW_BATCH, str(BATCH_ROWS))
    return spark


@cache
def shipping_folder() -> Path:
    """Where the files sent to executors are made. Spark may fetch an added file again for any
    later task in the session, so they stay until the process ends."""
    folder = Path(tempfile.mkdtemp(prefix="churn-spark-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def ship_code(spark: SparkSession, folder: Path, job_id: str) -> None:
    """Send the project's packages to the executors, unless they came from a --py-files zip."""
    import churn

    root = Path(churn.__file__).resolve().parent.parent
    if not root.is_dir():  # imported from a zip that spark-submit already sends
        return
    spark.sparkContext.addPyFile(str(project_zip(root, folder / f"churn-project-{job_id}.zip")))


def project_zip(root: Path, archive: Path) -> Path:
    """The packages a Spark job runs, zipped for `addPyFile` or `spark-submit --py-files`."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as packed:
        for package in SHIPPED_PACKAGES:
            for file in sorted((root / package).rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts:
                    packed.write(file, file.relative_to(root))
    return archive
