"""`python -m scoring spark`: the Spark job's command line (spark-submit runs it via submit.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def spark(
    data: Annotated[
        str, typer.Option(help="Parquet or CSV path (local, s3a://, hdfs://...) or a table name.")
    ],
    out: Annotated[str, typer.Option(help="Parquet folder to write; appears only when done.")],
    master: Annotated[
        Optional[str],
        typer.Option(help="local[2], spark://..., k8s://...; default: spark-submit's or local[*]."),
    ] = None,
    model_uri: Annotated[
        Optional[str], typer.Option(help="Default: models:/<name>@champion, resolved once.")
    ] = None,
    input_format: Annotated[
        str, typer.Option("--format", help="auto (by the path), parquet, csv or table.")
    ] = "auto",
    partition_by: Annotated[
        Optional[list[str]], typer.Option(help="An input column to partition the output by.")
    ] = None,
    reasons: Annotated[bool, typer.Option(help="Add each customer's top 3 reasons.")] = False,
    keep_inputs: Annotated[
        bool, typer.Option(help="Keep every input column (default: the id and partitions).")
    ] = False,
    record: Annotated[
        bool, typer.Option(help="Record every scored row in the prediction history.")
    ] = False,
    job_id: Annotated[
        Optional[str],
        typer.Option(help="Names the run in the history; a rerun with it records nothing twice."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Score a whole customer table on Spark with the champion: the same columns as
    `python -m scoring`, plus model_name and model_version, into partitioned Parquet."""
    from churn.errors import UserError
    from churn.experiment import ExperimentSettings
    from history.settings import HistorySettings
    from registry.settings import RegistrySettings
    from scoring.spark.job import JobOptions, run_job

    if input_format not in ("auto", "parquet", "csv", "table"):
        raise UserError(f"--format {input_format!r} is not auto, parquet, csv or table.")
    options = JobOptions(
        data=data,
        out=out,
        model_uri=model_uri,
        master=master,
        input_format=input_format,  # type: ignore[arg-type]
        partition_by=tuple(partition_by or ()),
        reasons=reasons,
        keep_inputs=keep_inputs,
        overwrite=overwrite,
        experiment=ExperimentSettings().experiment(),
    )
    if job_id:
        options = replace(options, job_id=job_id)
    result = run_job(options, RegistrySettings(), HistorySettings() if record else None)
    s = result.summary
    typer.echo(
        f"Scored {s['customers_scored']:,} customers and rejected {s['rows_rejected']:,} rows "
        f"with {s['model_name']} version {s['model_version']} in {s['seconds']} s "
        f"-> {result.out}\nSummary: {result.out}/_summary/summary.json (job {s['job_id']})"
    )
