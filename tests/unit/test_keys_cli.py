"""`python -m serving keys`: a key is shown once, never listed, and mistakes exit with 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from churn.errors import UserError
from serving.access.key_store import KeyStore
from serving.access.keys_cli import create_key
from serving.settings import ServingSettings

ROOT = Path(__file__).resolve().parents[2]


def _keys(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving", "keys", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CHURN_AUTH_DB": f"sqlite:///{tmp_path}/keys.db"},
    )


def test_create_prints_the_key_once_and_list_never_shows_a_secret(tmp_path: Path) -> None:
    created = _keys(tmp_path, "create", "--name", "crm", "--scopes", "predict,explain")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("chn_") and len(token.splitlines()) == 1
    assert "shown once" in created.stderr
    secret = token.split("_", 2)[2]

    listed = _keys(tmp_path, "list")
    assert "crm" in listed.stdout and "predict,explain" in listed.stdout
    assert secret not in listed.stdout
    assert secret not in (tmp_path / "keys.db").read_bytes().decode("latin-1")
    assert (tmp_path / "keys.pepper").stat().st_mode & 0o077 == 0

    again = _keys(tmp_path, "create", "--name", "crm")
    assert again.returncode == 2
    assert again.stderr.startswith("error: A live key named 'crm' exists")


def test_replace_revokes_the_live_key_of_that_name(tmp_path: Path) -> None:
    settings = ServingSettings(auth_db=f"sqlite:///{tmp_path}/keys.db")
    first = create_key(settings, "crm", "predict", "10/second", None)
    second = create_key(settings, "crm", "predict", "10/second", None, replace=True)
    keys = {key.key_id: key for key in KeyStore(settings.auth_db).records()}
    assert keys[first.record.key_id].revoked_at is not None
    assert keys[second.record.key_id].revoked_at is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scopes": "predict,everything"}, "--scopes: unknown scope 'everything'"),
        ({"rate": "lots"}, "--rate: 'lots' is not a rate"),
        ({"daily_customers": 0}, "--daily-customers"),
        ({"name": " "}, "a key needs a name"),
        ({"auth_db": "postgresql://127.0.0.1:1/keys"}, "CHURN_AUTH_PEPPER must be set"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    settings = ServingSettings(auth_db=options.pop("auth_db", f"sqlite:///{tmp_path}/keys.db"))
    arguments = {"name": "x", "scopes": "predict", "rate": "1/second", "daily_customers": None}
    with pytest.raises(UserError, match=message):
        create_key(settings, **{**arguments, **options})


def test_revoking_a_name_with_no_live_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="No live key named 'nobody'"):
        KeyStore(f"sqlite:///{tmp_path}/keys.db").revoke("nobody")
