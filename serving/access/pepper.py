"""The server-side pepper that API key digests are keyed with."""

from __future__ import annotations

import secrets
from pathlib import Path

import sqlalchemy as sa
from pydantic import SecretStr

from churn.errors import UserError


def pepper_for(auth_db: str, configured: SecretStr | None) -> bytes:
    """CHURN_AUTH_PEPPER if set. Otherwise, for an embedded SQLite key file, a random pepper in a
    file beside it, made on first use and readable by its owner only. A shared key database
    needs the pepper from the environment, so every replica and the keys CLI hash alike."""
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode()
    url = sa.engine.make_url(auth_db)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise UserError(
            f"CHURN_AUTH_PEPPER must be set when API keys live in {url.get_backend_name()}: "
            "every replica and `python -m serving keys` must hash keys with the same pepper."
        )
    path = Path(url.database).with_suffix(".pepper")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip().encode()
