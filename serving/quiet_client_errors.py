"""Log rejected requests as one warning line instead of an error with a traceback.

BentoML logs every request that fails validation as an ERROR with the full traceback. A bad
request is the client's mistake and is already answered with a 400; under load those
tracebacks cost real CPU and bury actual server errors.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from serving.errors import rejection_summary

BENTOML_HTTP_LOGGER = "bentoml._internal.server.http_app"


class ClientErrorFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        if exc_info and isinstance(exc_info[1], ValidationError):
            record.msg = "Rejected a bad request with 400: %s"
            record.args = (rejection_summary(exc_info[1]),)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install() -> None:
    logger = logging.getLogger(BENTOML_HTTP_LOGGER)
    if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
        logger.addFilter(ClientErrorFilter())
