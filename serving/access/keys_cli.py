"""`python -m serving keys create|list|revoke`: the service's API keys, in CHURN_AUTH_DB."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from churn.errors import UserError
from serving.access.api_keys import SCOPES, parse_scopes
from serving.access.key_store import KeyRecord, KeyStore, NewKey
from serving.access.pepper import pepper_for
from serving.settings import ServingSettings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The service's API keys.")


def create_key(
    settings: ServingSettings,
    name: str,
    scopes: str,
    rate: str,
    daily_customers: int | None,
    replace: bool = False,
) -> NewKey:
    try:
        parsed_scopes = parse_scopes(scopes)
    except ValueError as error:
        raise UserError(f"--scopes: {error}.") from None
    if daily_customers is not None and daily_customers < 1:
        raise UserError("--daily-customers: give a number of customers of 1 or more.")
    pepper = pepper_for(settings.auth_db, settings.auth_pepper)
    return KeyStore(settings.auth_db).create(
        name, parsed_scopes, rate, daily_customers, pepper, replace
    )


@app.command("create")
def create_command(
    name: Annotated[str, typer.Option(help="Who uses the key; metrics and `revoke` use it.")],
    scopes: Annotated[
        str, typer.Option(help=f"Comma-separated, from: {', '.join(SCOPES)}.")
    ] = "predict",
    rate: Annotated[str, typer.Option(help="Customers per window, such as 100/second.")] = (
        "100/second"
    ),
    daily_customers: Annotated[
        int | None, typer.Option(help="At most this many customers a day (UTC); none if unset.")
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Revoke a live key of the same name first.")
    ] = False,
) -> None:
    """Create a key and print it once; only its hash is kept."""
    new = create_key(ServingSettings(), name, scopes, rate, daily_customers, replace)
    typer.echo(
        f"Created key {name!r} ({','.join(new.record.scopes)}, {new.record.rate}). "
        "It is shown once, below; keep it secret.",
        err=True,
    )
    typer.echo(new.token)


@app.command("list")
def list_command() -> None:
    """Every key, without its secret."""
    keys = KeyStore(ServingSettings().auth_db).records()
    if not keys:
        typer.echo("No keys yet; `python -m serving keys create --name NAME` makes one.")
        return
    rows = [_row(record) for record in keys]
    header = ("name", "id", "scopes", "rate", "daily", "created", "last used", "revoked")
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


@app.command("revoke")
def revoke_command(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key; each worker refuses it within CHURN_AUTH_CACHE_SECONDS."""
    settings = ServingSettings()
    KeyStore(settings.auth_db).revoke(name)
    typer.echo(
        f"Revoked {name!r}; the service refuses it within {settings.auth_cache_seconds:g} s."
    )


def _row(record: KeyRecord) -> tuple[str, ...]:
    return (
        record.name,
        record.key_id,
        ",".join(record.scopes),
        record.rate,
        "-" if record.daily_customers is None else f"{record.daily_customers:,}",
        _when(record.created_at),
        _when(record.last_used_at),
        _when(record.revoked_at),
    )


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")
