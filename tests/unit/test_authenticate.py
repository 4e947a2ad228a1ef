"""Access control at the ASGI edge: who gets in, what they may call, and what everyone else is
told; against a real SQLite key table."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from serving.access import api_keys
from serving.access.authenticate import Authenticate
from serving.access.key_cache import KeyCache
from serving.access.key_store import KeyStore

PEPPER = b"test pepper"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def whoami(scope: Scope, receive: Receive, send: Send) -> None:
    body = json.dumps({"client": scope.get("churn.client")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(f"sqlite:///{tmp_path}/keys.db")


def _app(store: KeyStore, clock: Clock | None = None, **options: Any) -> Authenticate:
    keys = KeyCache(store, max_age_s=10, clock=clock or Clock())
    return Authenticate(whoami, keys, PEPPER, **options)


def _request(
    app: Authenticate, path: str = "/predict", headers: dict[str, str] | None = None
) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            return await client.post(path, headers=headers or {}, content=b"{}")

    return asyncio.run(call())


def _token(store: KeyStore, name: str = "crm", scopes: tuple[str, ...] = ("predict",)) -> str:
    return store.create(name, scopes, "100/second", None, PEPPER).token  # type: ignore[arg-type]


def test_a_valid_key_is_let_in_by_either_header_and_named_for_metrics(store: KeyStore) -> None:
    token = _token(store)
    app = _app(store)
    for headers in ({"Authorization": f"Bearer {token}"}, {"X-API-Key": token}):
        response = _request(app, headers=headers)
        assert response.status_code == 200
        assert response.json() == {"client": "crm"}
    assert _request(app, headers={"Authorization": f"bearer  {token} "}).status_code == 200


def _bad_headers(store: KeyStore) -> dict[str, tuple[dict[str, str], str]]:
    token = _token(store)
    key_id = token.split("_")[1]
    revoked = _token(store, "old")
    store.revoke("old")
    return {
        "no header": ({}, "An API key is required"),
        "empty header": ({"Authorization": ""}, "An API key is required"),
        "empty bearer": ({"Authorization": "Bearer "}, "An API key is required"),
        "another scheme": ({"Authorization": f"Basic {token}"}, "An API key is required"),
        "malformed": ({"X-API-Key": "letmein"}, "malformed"),
        "unknown id": ({"X-API-Key": "chn_000000000000_" + "a" * 43}, "not valid"),
        "wrong secret": ({"X-API-Key": f"chn_{key_id}_" + "b" * 43}, "not valid"),
        "10 kB secret": ({"X-API-Key": f"chn_{key_id}_" + "b" * 10_000}, "malformed"),
        "revoked": ({"X-API-Key": revoked}, "revoked"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "no header",
        "empty header",
        "empty bearer",
        "another scheme",
        "malformed",
        "unknown id",
        "wrong secret",
        "10 kB secret",
        "revoked",
    ],
)
def test_a_missing_or_bad_key_gets_a_401_with_a_challenge(store: KeyStore, case: str) -> None:
    headers, message = _bad_headers(store)[case]
    response = _request(_app(store), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="churn"')
    assert message in response.json()["error"]


def test_a_key_without_the_paths_scope_gets_a_403_naming_it(store: KeyStore) -> None:
    token = _token(store)
    admin = _token(store, "ops", ("admin",))
    app = _app(store)
    response = _request(app, "/explain", {"X-API-Key": token})
    assert response.status_code == 403
    assert "lacks the 'explain' scope" in response.json()["error"]
    assert _request(app, "/score_file/submit", {"X-API-Key": token}).status_code == 403
    assert _request(app, "/explain", {"X-API-Key": admin}).status_code == 200


def test_health_and_docs_are_open_and_metrics_can_be_guarded(store: KeyStore) -> None:
    for path in ("/livez", "/readyz", "/docs", "/metrics"):
        assert _request(_app(store), path).json() == {"client": None}
    guarded = _app(store, metrics_require_key=True)
    assert _request(guarded, "/metrics").status_code == 401
    scraper = _token(store, "prometheus", ("metrics",))
    assert _request(guarded, "/metrics", {"X-API-Key": scraper}).status_code == 200
    assert _request(guarded, "/model", {"X-API-Key": scraper}).status_code == 200


def test_a_revoked_key_works_until_the_table_is_read_again_and_not_after(store: KeyStore) -> None:
    clock = Clock()
    app = _app(store, clock)
    token = _token(store)
    assert _request(app, headers={"X-API-Key": token}).status_code == 200
    store.revoke("crm")
    clock.now += 4
    assert _request(app, headers={"X-API-Key": token}).status_code == 200
    clock.now += 6
    assert _request(app, headers={"X-API-Key": token}).status_code == 401


def test_a_new_key_works_at_once(store: KeyStore) -> None:
    clock = Clock()
    app = _app(store, clock)
    assert _request(app, headers={"X-API-Key": _token(store)}).status_code == 200
    clock.now += 1
    assert _request(app, headers={"X-API-Key": _token(store, "new")}).status_code == 200


def test_a_key_table_that_cannot_be_read_gets_a_503_not_a_500(tmp_path: Path) -> None:
    (tmp_path / "keys.db").mkdir()
    response = _request(
        _app(KeyStore(f"sqlite:///{tmp_path}/keys.db")),
        headers={"X-API-Key": "chn_000000000000_" + "a" * 43},
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_a_token_is_hashed_once_and_a_wrong_secret_for_its_id_still_fails(
    store: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    real_matches = api_keys.matches

    def counted(pepper: bytes, presented: api_keys.PresentedKey, stored: str) -> bool:
        hashed.append(presented.secret)
        return real_matches(pepper, presented, stored)

    monkeypatch.setattr(api_keys, "matches", counted)
    app = _app(store)
    token = _token(store)
    for _ in range(3):
        assert _request(app, headers={"X-API-Key": token}).status_code == 200
    assert len(hashed) == 1
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert _request(app, headers={"X-API-Key": forged}).status_code == 401
    assert len(hashed) == 2


class FlakyStore:
    """A key table that can be made unreadable, counting how often it is read."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self.down = False
        self.reads = 0

    def by_id(self) -> dict[str, Any]:
        self.reads += 1
        if self.down:
            raise OSError("the key database is down")
        return self.store.by_id()

    def mark_used(self, key_ids: set[str], at: Any) -> None:
        if not self.down:
            self.store.mark_used(key_ids, at)


def test_a_key_table_that_stays_unreadable_is_tried_once_a_cache_period_and_logged_once(
    store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    token, clock = _token(store), Clock()
    flaky = FlakyStore(store)
    app = Authenticate(whoami, KeyCache(flaky, max_age_s=10, clock=clock), PEPPER)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {token}"}
    assert _request(app, headers=headers).status_code == 200
    flaky.down, clock.now, reads = True, clock.now + 11, flaky.reads
    with caplog.at_level("WARNING", logger="serving.access.key_cache"):
        statuses = [_request(app, headers=headers).status_code for _ in range(50)]
        clock.now += 11
        statuses += [_request(app, headers=headers).status_code for _ in range(50)]
    assert statuses == [200] * 100  # the copy last read keeps serving
    assert flaky.reads - reads == 2
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1
    flaky.down, clock.now = False, clock.now + 11
    with caplog.at_level("INFO", logger="serving.access.key_cache"):
        assert _request(app, headers=headers).status_code == 200
    assert any("readable again" in record.getMessage() for record in caplog.records)


class HangingStore(FlakyStore):
    """A key table whose reads hang until `release` is set, as behind a stalled network."""

    def __init__(self, store: KeyStore) -> None:
        super().__init__(store)
        self.release = threading.Event()

    def by_id(self) -> dict[str, Any]:
        self.reads += 1
        if self.down:
            self.release.wait(30)
        return self.store.by_id()


def test_a_key_table_that_hangs_holds_a_request_for_the_wait_once_then_the_copy_serves(
    store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    token, clock = _token(store), Clock()
    hanging = HangingStore(store)
    keys = KeyCache(hanging, max_age_s=10, clock=clock, read_wait_s=0.5)  # type: ignore[arg-type]
    app = Authenticate(whoami, keys, PEPPER)
    headers = {"Authorization": f"Bearer {token}"}

    async def scenario() -> tuple[list[int], list[float], int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            first = await client.post("/predict", headers=headers, content=b"{}")
            hanging.down, clock.now = True, clock.now + 11
            statuses, seconds = [first.status_code], []
            for _ in range(20):
                started = time.monotonic()
                statuses.append((await client.post("/predict", headers=headers)).status_code)
                seconds.append(time.monotonic() - started)
            reads = hanging.reads
            hanging.down = False
            hanging.release.set()
            await asyncio.sleep(0.1)
            clock.now += 11
            statuses.append((await client.post("/predict", headers=headers)).status_code)
            return statuses, seconds, reads

    with caplog.at_level("INFO", logger="serving.access.key_cache"):
        statuses, seconds, reads = asyncio.run(scenario())
    assert statuses == [200] * 22
    assert seconds[0] >= 0.5  # the first request after the cache went stale waited
    # The others did not wait on the hung read; the wait is long enough that a slow request
    # on a busy machine is not mistaken for one.
    assert max(seconds[1:]) < 0.5
    assert reads == 2  # one read at the start, one hung: no pile-up of reads
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "did not answer" in warnings[0]
    assert any("readable again" in r.getMessage() for r in caplog.records)


def test_a_worker_that_read_the_table_as_it_started_checks_keys_with_the_store_down(
    store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    token = _token(store)
    flaky = FlakyStore(store)
    keys = KeyCache(flaky, max_age_s=10, clock=Clock())  # type: ignore[arg-type]
    keys.prime()
    flaky.down = True
    app = Authenticate(whoami, keys, PEPPER)
    with caplog.at_level("WARNING"):
        statuses = [_request(app, headers={"X-API-Key": token}).status_code for _ in range(3)]
    assert statuses == [200] * 3
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


def test_a_worker_that_never_read_the_table_answers_503_and_logs_the_outage_once(
    store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    token, clock = _token(store), Clock()
    flaky = FlakyStore(store)
    flaky.down = True
    keys = KeyCache(flaky, max_age_s=10, clock=clock)  # type: ignore[arg-type]
    with caplog.at_level("WARNING"):
        keys.prime()
        statuses = []
        for _ in range(5):
            clock.now += 2  # past the retry interval each time: every request tries the store
            statuses.append(
                _request(
                    Authenticate(whoami, keys, PEPPER), headers={"X-API-Key": token}
                ).status_code
            )
    assert statuses == [503] * 5
    logged = [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert len(logged) == 2, logged  # the start-up read, then the outage once
