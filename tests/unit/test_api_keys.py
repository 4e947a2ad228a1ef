"""API keys: their format, their peppered hash, and the scopes they carry."""

from __future__ import annotations

import hmac

import pytest

from serving.access import api_keys

PEPPER = b"pepper"


def test_an_issued_key_parses_back_to_its_id_and_matches_only_its_own_digest() -> None:
    key = api_keys.issue(PEPPER)
    presented = api_keys.parse(key.token)
    assert presented is not None and presented.key_id == key.key_id
    assert api_keys.matches(PEPPER, presented, key.digest)
    assert not api_keys.matches(b"another pepper", presented, key.digest)
    assert not api_keys.matches(PEPPER, presented, api_keys.issue(PEPPER).digest)
    assert len(presented.secret) == 43 and presented.secret not in key.digest


@pytest.mark.parametrize(
    "token",
    [
        "",
        "chn_",
        "Bearer chn_0123456789ab_" + "a" * 43,
        "chn_0123456789ab_" + "a" * 42,
        "chn_0123456789ab_" + "a" * 44,
        "chn_0123456789AB_" + "a" * 43,
        "chn_0123456789ab_" + "a" * 10_000,
        "sk_0123456789ab_" + "a" * 43,
        "chn_0123456789ab_" + "a" * 42 + "!",
    ],
)
def test_anything_but_a_well_formed_key_does_not_parse(token: str) -> None:
    assert api_keys.parse(token) is None


def test_the_secret_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[str, str]] = []
    constant_time_compare = hmac.compare_digest

    def compare_digest(a: str, b: str) -> bool:
        compared.append((a, b))
        return constant_time_compare(a, b)

    monkeypatch.setattr(api_keys.hmac, "compare_digest", compare_digest)
    key = api_keys.issue(PEPPER)
    presented = api_keys.parse(key.token)
    assert presented is not None
    assert api_keys.matches(PEPPER, presented, key.digest)
    assert compared == [(key.digest, key.digest)]


def test_scopes_are_checked_deduplicated_and_ordered() -> None:
    assert api_keys.parse_scopes("explain, predict,explain") == ("predict", "explain")
    with pytest.raises(ValueError, match="unknown scope 'predcit'"):
        api_keys.parse_scopes("predcit")
    with pytest.raises(ValueError, match="no scopes"):
        api_keys.parse_scopes(" , ")
