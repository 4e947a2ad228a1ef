"""The console's pure parts: sessions and CSRF tokens, the customer form, numbers for people."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from itsdangerous import URLSafeTimedSerializer
from pydantic import BaseModel

from churn.features import FeatureSpec, infer_spec
from console import session as session_module
from console.formatting import conditions, moment, money, percent, thousands
from console.forms import form_fields, parse_customer
from console.pages import Console, upload_name
from console.session import Sessions, console_secret
from serving.access.key_cache import KeyCache
from serving.access.key_store import KeyStore
from serving.model.schema import customer_model
from training.synth import synthesize


def test_a_session_names_its_key_and_is_refused_when_forged_or_expired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sessions = Sessions(b"server secret")
    cookie = sessions.issue("a1b2c3d4e5f6")
    assert sessions.key_id(cookie) == "a1b2c3d4e5f6"
    assert Sessions(b"another secret").key_id(cookie) is None
    assert sessions.key_id(cookie[:-2] + "xx") is None
    assert sessions.key_id(None) is None and sessions.key_id("") is None
    forged = URLSafeTimedSerializer(b"guess", salt="churn-console-session").dumps({"key_id": "x"})
    assert sessions.key_id(forged) is None
    monkeypatch.setattr(session_module, "SESSION_SECONDS", -1)
    time.sleep(1.1)  # itsdangerous dates in whole seconds
    assert sessions.key_id(cookie) is None


def test_csrf_tokens_belong_to_their_cookie_and_their_secret() -> None:
    sessions = Sessions(b"server secret")
    token = sessions.csrf_token("nonce-1")
    assert sessions.csrf_valid("nonce-1", token)
    assert not sessions.csrf_valid("nonce-2", token)
    assert not Sessions(b"other").csrf_valid("nonce-1", token)
    assert not sessions.csrf_valid(None, token) and not sessions.csrf_valid("nonce-1", None)


def test_the_secret_comes_from_the_setting_else_the_pepper() -> None:
    assert console_secret("set", b"pepper") == b"set"
    from_pepper = console_secret(None, b"pepper")
    assert from_pepper == console_secret(None, b"pepper") != console_secret(None, b"other")
    assert b"pepper" not in from_pepper


def _customer_model() -> tuple[type[BaseModel], FeatureSpec]:
    table = synthesize(300, seed=2)
    spec = infer_spec(table.drop(columns=["Churn"]), "customerID", "Churn")
    from mlflow.models import infer_signature

    example = spec.prepare(table.head(3))
    model = customer_model(infer_signature(example), "customerID", spec.example)
    return model, spec


def test_the_form_has_a_field_per_feature_with_levels_and_the_typical_customer() -> None:
    _, spec = _customer_model()
    fields = form_fields(spec, None)
    assert [f.name for f in fields] == ["customerID", *spec.names]
    contract = next(f for f in fields if f.name == "Contract")
    assert contract.kind == "categorical" and "Month-to-month" in contract.levels
    tenure = next(f for f in fields if f.name == "tenure")
    assert tenure.kind == "numeric" and tenure.value == str(int(spec.example["tenure"]))


def test_a_bad_number_is_named_by_its_field_and_a_blank_one_is_missing() -> None:
    model, spec = _customer_model()
    form = {f.name: f.value for f in form_fields(spec, None)}
    customer, errors = parse_customer(model, spec, {**form, "tenure": "a few"})
    assert customer is None and list(errors) == ["tenure"]
    customer, errors = parse_customer(model, spec, {**form, "TotalCharges": ""})
    assert errors == {} and customer is not None


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        (percent(0.4231), "42.3%"),
        (thousands(1234.4), "1,234"),
        (money(158.643), "158.64"),
        (percent(None), "\u2013"),
        (moment("2026-12-01T23:30:00.926757Z"), "2026-12-01 23:30 UTC"),
    ],
)
def test_numbers_are_shown_for_people(shown: str, expected: str) -> None:
    assert shown == expected


def test_a_rules_conditions_read_as_a_sentence() -> None:
    when = {
        "tier": ["high", "medium"],
        "features": [{"feature": "PaymentMethod", "in": ["Electronic check", "Mailed check"]}],
    }
    assert conditions(when) == (
        "tier is high or medium and PaymentMethod is Electronic check or Mailed check"
    )
    assert conditions({}) == "always"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("customers.csv", "customers.csv"),
        ("March.PARQUET", "March.parquet"),
        ("C:\\exports\\base.pq", "base.pq"),
        ("../../etc/passwd", "passwd.csv"),
        ("nul\x00byte.csv", "nulbyte.csv"),
        ("x." + "y" * 300, "x.csv"),
        ("a" * 300 + ".csv", "a" * 100 + ".csv"),
    ],
)
def test_an_uploaded_files_name_is_made_safe_to_show_and_save(sent: str, kept: str) -> None:
    assert upload_name(sent) == kept


def test_an_upload_without_a_session_is_turned_away_before_its_body_is_read(
    tmp_path: Path,
) -> None:
    console = Console(
        KeyCache(KeyStore(f"sqlite:///{tmp_path}/keys.db"), 10), b"pepper", Sessions(b"secret")
    )
    app = FastAPI()
    app.include_router(console.router())
    chunks_read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        for _ in range(64):
            chunks_read += 1
            yield b"x" * (1 << 20)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            headers = {"content-type": "multipart/form-data; boundary=b"}
            return await client.post("/ui/files", content=body(), headers=headers)

    response = asyncio.run(post())
    assert response.status_code == 303 and response.headers["location"].startswith("/ui/login")
    assert chunks_read <= 1
