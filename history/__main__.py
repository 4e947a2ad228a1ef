"""`python -m history migrate|prune`: create or update the history schema; drop old days."""

from __future__ import annotations

import typer

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


@app.command()
def prune() -> None:
    """Drop predictions older than CHURN_HISTORY_RETENTION_DAYS."""
    settings = HistorySettings()
    dropped = drop_old_days(engine_for(settings.url), settings.retention_days)
    typer.echo(f"Dropped {dropped} (days on PostgreSQL, rows on SQLite).")


if __name__ == "__main__":
    run(app)
