"""The JSON error bodies every endpoint answers with, and how a rejected request is logged."""

from __future__ import annotations

import json

from pydantic import ValidationError


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def validation_error_body(error: ValidationError) -> bytes:
    """The same body BentoML gives for a bad request, so clients see one format."""
    return json.dumps(
        {
            "error": f"{error.error_count()} validation error for {error.title}",
            "detail": error.errors(include_url=False, include_context=False, include_input=False),
        },
        default=str,
    ).encode()


def rejection_summary(error: ValidationError) -> str:
    """One log line's worth: how many problems, and where the first one is."""
    first = ".".join(map(str, error.errors(include_url=False)[0]["loc"])) or "body"
    return f"{error.error_count()} validation error(s) for {error.title}, first at {first}"
