from __future__ import annotations

import pytest

from webhook.signature import RejectedDeliveryError, sign, verify

BODY = b'{"entity": "model_version_alias", "action": "created"}'
NOW = 1_800_000_000.0


def _verify(
    signature: str | None, timestamp: str | None = "1800000000", delivery: str | None = "d1"
) -> None:
    verify("secret", delivery, timestamp, signature, BODY, now=NOW, max_age_seconds=300)


def test_a_correct_signature_passes() -> None:
    _verify(sign("secret", "d1", "1800000000", BODY))


def test_any_of_several_signatures_may_match_during_rotation() -> None:
    _verify(f"{sign('old', 'd1', '1800000000', BODY)} {sign('secret', 'd1', '1800000000', BODY)}")


@pytest.mark.parametrize(
    ("signature", "timestamp", "delivery", "reason"),
    [
        (None, "1800000000", "d1", "unsigned"),
        (sign("secret", "d1", "1800000000", BODY + b" "), "1800000000", "d1", "does not match"),
        (sign("other", "d1", "1800000000", BODY), "1800000000", "d1", "does not match"),
        (sign("secret", "d2", "1800000000", BODY), "1800000000", "d1", "does not match"),
        (sign("secret", "d1", "1799999000", BODY), "1799999000", "d1", "away from now"),
        (sign("secret", "d1", "soon", BODY), "soon", "d1", "not a Unix time"),
    ],
)
def test_bad_deliveries_are_rejected(
    signature: str | None, timestamp: str, delivery: str, reason: str
) -> None:
    with pytest.raises(RejectedDeliveryError, match=reason):
        _verify(signature, timestamp, delivery)
