"""Run a Typer app as a command: logging set up once, user errors as exit code 2, no traceback."""

from __future__ import annotations

import logging
import sys

import typer
from pydantic import ValidationError

from churn.errors import UserError

QUIET_LOGGERS = ("alembic", "mlflow.store", "urllib3")


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
        for error in exc.errors(include_url=False):
            variable = f"CHURN_{str(error['loc'][0]).upper()}" if error["loc"] else exc.title
            typer.echo(f"error: {variable}: {error['msg']}", err=True)
        sys.exit(2)
