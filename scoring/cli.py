"""`python -m scoring` (and `python -m training score`): score a whole customer file."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional, cast

import typer

from churn.errors import UserError
from cli.runner import run
from registry.settings import RegistrySettings

if TYPE_CHECKING:
    from churn.model import ChurnModel
    from scoring.record import FileRecorder

# MLflow, the model and the history are imported by the commands that use them: a mistake in a
# setting or an option is then reported in a second, not after importing MLflow.

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def load_churn_model(uri: str, settings: RegistrySettings) -> ChurnModel:
    import mlflow

    from registry.client import connect

    if ":/" in uri:  # a registry or run URI; a local model folder needs no tracking store
        connect(settings)
    try:
        model: ChurnModel = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except mlflow.exceptions.MlflowException as exc:
        raise UserError(f"Cannot load {uri}: {str(exc).splitlines()[0]}") from exc
    return model


@app.command()
def score(
    data: Annotated[Path, typer.Option(help="CSV or Parquet file of customers.")],
    out: Annotated[Path, typer.Option(help="Where to write the scored .csv or .parquet file.")],
    model_uri: Annotated[
        Optional[str], typer.Option(help="Default: models:/<name>@champion.")
    ] = None,
    summary: Annotated[Path, typer.Option(help="Folder for summary.json and summary.html.")] = Path(
        "reports/summary"
    ),
    reasons: Annotated[bool, typer.Option(help="Add each customer's top 3 reasons.")] = True,
    record: Annotated[
        bool, typer.Option(help="Record every scored row in the prediction history.")
    ] = False,
    source: Annotated[
        str, typer.Option(help="The source recorded with each row.", hidden=True)
    ] = "batch",
    model_name: Annotated[
        Optional[str], typer.Option(help="With --record: the model's registered name.")
    ] = None,
    model_version: Annotated[
        Optional[str], typer.Option(help="With --record: the model's registered version.")
    ] = None,
) -> None:
    """Score a whole file in chunks: input columns plus decisions; bad rows get an `error`."""
    settings = RegistrySettings()
    uri = model_uri or settings.champion_uri
    model = load_churn_model(uri, settings)
    recorder = (
        _recorder(model, uri, settings, source, model_name, model_version) if record else None
    )
    started = time.perf_counter()
    try:
        from churn.experiment import ExperimentSettings
        from scoring.score_file import score_file

        experiment = ExperimentSettings().experiment()
        result = score_file(
            model, data, out, with_reasons=reasons, on_chunk=recorder, experiment=experiment
        )
    finally:
        if recorder is not None:
            recorder.close()
    json_path, html_path = result.summary.write(summary)
    seconds = time.perf_counter() - started
    s = result.summary
    typer.echo(
        f"Scored {s.scored:,} customers and rejected {s.rejected:,} rows in {seconds:.1f} s "
        f"-> {out}\nSummary: {json_path} and {html_path}"
    )
    if recorder is not None:
        typer.echo(f"Recorded {recorder.recorded:,} predictions in the history.")


def _recorder(
    model: ChurnModel,
    uri: str,
    settings: RegistrySettings,
    source: str,
    model_name: str | None,
    model_version: str | None,
) -> FileRecorder:
    from history.records import Source
    from history.settings import HistorySettings
    from history.store import History
    from scoring.record import FileRecorder, registered_version

    if source not in ("batch", "file"):
        raise UserError(f"--source: {source!r} is not batch or file.")
    if model_name is None or model_version is None:
        model_name, model_version = registered_version(uri, settings)
    history = History.open(HistorySettings())
    spec = model.spec
    return FileRecorder(
        history,
        cast(Source, source),
        model_name,
        model_version,
        spec.names,
        spec.id_column,  # type: ignore[arg-type]
    )


def main() -> None:
    if sys.argv[1:2] == ["spark"]:
        from scoring.spark.command import app as spark_app

        sys.argv.pop(1)
        run(spark_app)
        return
    run(app)
