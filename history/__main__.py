"""`python -m history migrate|prune|export`: create or update the history schema; drop old
days; write the BI views to files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Optional

import sqlalchemy as sa
import typer

from churn.errors import UserError
from cli.runner import run
from history.database import DATABASE_ERRORS, engine_for
from history.schema import migrate as apply_migrations
from history.schema import prune as drop_old_days
from history.settings import HistorySettings
from history.store import unreachable

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


@app.command()
def migrate() -> None:
    """Create the prediction and outcome tables, or apply the migrations they lack."""
    url = HistorySettings().url
    try:
        engine = engine_for(url)
        applied = apply_migrations(engine)
    except DATABASE_ERRORS as error:
        raise unreachable(url, error) from None
    target = engine.url.render_as_string(hide_password=True)
    typer.echo(f"{target}: " + (f"applied {', '.join(applied)}." if applied else "up to date."))


@app.command("create-database")
def create_database(
    url: Annotated[str, typer.Option(help="postgresql://... of the database to create.")],
    empty: Annotated[
        bool, typer.Option(help="Drop the database first if it exists, rows and all.")
    ] = False,
) -> None:
    """Create the PostgreSQL database of a history URL if it does not exist, then migrate it.

    Load tests pass --empty: PostgreSQL shares their cores, and a table grown by earlier runs
    makes each insert cost it more, so runs would not compare."""
    import psycopg

    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        raise UserError(f"--url: {url!r} is not a postgresql:// URL naming a database.")
    admin = parsed.set(drivername="postgresql", database="postgres")
    try:
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as db:
            if empty:
                db.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
            exists = db.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,)
            ).fetchone()
            if exists is None:
                db.execute(f'CREATE DATABASE "{parsed.database}"')
        applied = apply_migrations(engine_for(url))
    except DATABASE_ERRORS as error:
        raise unreachable(url, error) from None
    made = "existed" if exists else "created"
    typer.echo(
        f"{parsed.database}: {made}; "
        + (f"applied {', '.join(applied)}." if applied else "up to date.")
    )


@app.command()
def prune() -> None:
    """Drop predictions older than CHURN_HISTORY_RETENTION_DAYS."""
    settings = HistorySettings()
    dropped = drop_old_days(engine_for(settings.url), settings.retention_days)
    typer.echo(f"Dropped {dropped} (days on PostgreSQL, rows on SQLite).")


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="Folder for customers/ and daily_kpis/, by day.")],
    since: Annotated[
        Optional[datetime],
        typer.Option(formats=["%Y-%m-%d"], help="First day [default: 30 days before --until]."),
    ] = None,
    until: Annotated[
        Optional[datetime], typer.Option(formats=["%Y-%m-%d"], help="Last day [default: today].")
    ] = None,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it holds files.")] = False,
) -> None:
    """Write the BI views (bi_customers, bi_daily_kpis) as Parquet or CSV, partitioned by day."""
    from history.bi_export import export as export_views

    if file_format not in ("parquet", "csv"):
        raise UserError(f"--format {file_format!r} is not parquet or csv.")
    last = (until or datetime.now(UTC)).date()
    first = since.date() if since else last - timedelta(days=30)
    url = HistorySettings().url
    try:
        engine = engine_for(url)
        apply_migrations(engine)
        done = export_views(engine, out, first, last, file_format, overwrite)  # type: ignore[arg-type]
    except DATABASE_ERRORS as error:
        raise unreachable(url, error) from None
    typer.echo(
        f"Wrote {done.rows['customers']:,} customers and {done.rows['daily_kpis']:,} KPI rows "
        f"over {done.days} day{'' if done.days == 1 else 's'}, {first} to {last}, to {out}"
    )


if __name__ == "__main__":
    run(app)
