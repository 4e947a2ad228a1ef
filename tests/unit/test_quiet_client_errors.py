"""A request rejected for a validation error is logged as one warning line, not a traceback."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from pydantic import BaseModel, ValidationError

from serving.http import quiet_client_errors


class Customer(BaseModel):
    tenure: int


@pytest.fixture()
def bentoml_log() -> Iterator[io.StringIO]:
    """A handler on the `bentoml` logger, as BentoML's server logging sets one up."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    parent = logging.getLogger("bentoml")
    parent.addHandler(handler)
    try:
        yield written
    finally:
        parent.removeHandler(handler)


def test_a_validation_error_logged_by_any_bentoml_logger_becomes_one_warning_line(
    bentoml_log: io.StringIO,
) -> None:
    quiet_client_errors.install()
    try:
        Customer.model_validate({"tenure": "long"})
    except ValidationError:
        logging.getLogger("bentoml.server.somewhere").exception("Error handling request")

    written = bentoml_log.getvalue()
    assert written.startswith("WARNING Rejected a bad request with 400: ")
    assert "tenure" in written and "Traceback" not in written


def test_other_errors_keep_their_traceback(bentoml_log: io.StringIO) -> None:
    quiet_client_errors.install()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("bentoml.server.somewhere").exception("Error handling request")

    assert bentoml_log.getvalue().startswith("ERROR Error handling request")
    assert "Traceback" in bentoml_log.getvalue()
