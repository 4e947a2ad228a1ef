"""`python -m serving`: import the promoted model into the BentoML store, describe it, and manage
the service's API keys.

The model commands import BentoML and MLflow when they run, not here: those imports take
seconds, and `keys` should not wait for them."""

from __future__ import annotations

import json
import shlex
from typing import Annotated

import typer

from churn.errors import UserError
from cli.runner import run
from serving.access.keys_cli import app as keys_app
from serving.settings import ServingSettings

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(keys_app, name="keys")


@app.callback()
def cli() -> None:
    """Serving helpers."""


@app.command("import-champion")
def import_champion_command() -> None:
    """Import models:/<CHURN_MODEL_NAME>@<CHURN_MODEL_ALIAS> into the BentoML model store."""
    from serving.model.champion import import_champion

    model = import_champion(ServingSettings())
    labels = model.info.labels
    typer.echo(
        f"BentoML model {model.tag} = {labels['registered_model']} version {labels['version']} "
        f"(run {labels['run_id']})"
    )


@app.command("example-request")
def example_request_command(
    api_key: Annotated[str, typer.Option(help="Send this API key (CHURN_AUTH=required).")] = "",
) -> None:
    """Print a curl command that scores one real customer with the newest imported model."""
    import bentoml

    from serving.model.champion import example_customer

    settings = ServingSettings()
    try:
        model = bentoml.models.get(f"{settings.model_name}:latest")
    except bentoml.exceptions.NotFound as exc:
        raise UserError(f"No {settings.model_name!r} model in the BentoML store yet.") from exc
    body = json.dumps({"customers": [example_customer(model)]})
    authorization = f"-H {shlex.quote(f'Authorization: Bearer {api_key}')} " if api_key else ""
    typer.echo(
        f"curl -s -X POST http://localhost:{settings.port}/predict {authorization}"
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )


@app.command("model-labels")
def model_labels_command(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead.")] = False,
    image: Annotated[str, typer.Option(help="With --json: the image that ships it.")] = "",
) -> None:
    """Registry name, version and run id of the newest imported model, as image labels."""
    import bentoml

    settings = ServingSettings()
    try:
        model = bentoml.models.get(f"{settings.model_name}:latest")
    except bentoml.exceptions.NotFound as exc:
        raise UserError(f"No {settings.model_name!r} model in the BentoML store yet.") from exc
    labels = model.info.labels
    values = {
        "mlflow.model.name": labels["registered_model"],
        "mlflow.model.version": labels["version"],
        "mlflow.model.run_id": labels["run_id"],
    }
    if as_json:
        typer.echo(json.dumps({**values, "bento_model": str(model.tag), "image": image}))
    else:
        typer.echo(" ".join(f"{key}={value}" for key, value in values.items()))


def main() -> None:
    run(app)


if __name__ == "__main__":
    main()
