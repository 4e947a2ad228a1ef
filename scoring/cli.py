"""`python -m scoring` (and `python -m training score`): score a whole customer file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import mlflow
import typer

from churn.errors import UserError
from churn.model import ChurnModel
from cli.runner import run
from registry.client import connect
from registry.settings import RegistrySettings
from scoring.score_file import score_file

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def load_churn_model(uri: str, settings: RegistrySettings) -> ChurnModel:
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
) -> None:
    """Score a whole file in chunks: input columns plus decisions; bad rows get an `error`."""
    settings = RegistrySettings()
    model = load_churn_model(model_uri or settings.champion_uri, settings)
    started = time.perf_counter()
    result = score_file(model, data, out, with_reasons=reasons)
    json_path, html_path = result.summary.write(summary)
    seconds = time.perf_counter() - started
    s = result.summary
    typer.echo(
        f"Scored {s.scored:,} customers and rejected {s.rejected:,} rows in {seconds:.1f} s "
        f"-> {out}\nSummary: {json_path} and {html_path}"
    )


def main() -> None:
    run(app)
