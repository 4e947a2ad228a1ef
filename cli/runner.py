"""Run a Typer app as a command: logging set up once, user errors as exit code 2, no traceback."""

from __future__ import annotations

import logging
import sys

import typer
from pydantic import ValidationError

from churn.errors import UserError

QUIET_LOGGERS = ("alembic", "mlflow.store", "urllib3")
# Settings classes whose variables do not start with plain CHURN_.
ENV_PREFIXES = {
    "HistorySettings": "CHURN_HISTORY_",
    "DriftSettings": "CHURN_DRIFT_",
    "ExperimentSettings": "CHURN_EXPERIMENT_",
}


def run(app: typer.Typer) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except ValidationError as exc:  # a setting read from the environment
        for message in settings_errors(exc):
            typer.echo(f"error: {message}", err=True)
        sys.exit(2)


def settings_errors(exc: ValidationError) -> list[str]:
    """What is wrong with each bad setting, naming its environment variable."""
    prefix = ENV_PREFIXES.get(exc.title, "CHURN_")
    lines = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            message = f"{prefix}{str(error['loc'][0]).upper()}: {message}"
        lines.append(message)
    return lines
