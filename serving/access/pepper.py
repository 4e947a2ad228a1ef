"""The server-side pepper that API key digests are keyed with."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
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
        _make_once(path)
    return path.read_text().strip().encode()


def _make_once(path: Path) -> None:
    """Write a new pepper beside `path`, then link it in: a link fails if the name exists, so
    when processes start together the first one's pepper is the one, and none reads a file
    half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as file:  # mkstemp makes it readable by its owner only
            file.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            path.hardlink_to(draft)
    finally:
        Path(draft).unlink()
