"""Log rejected requests as one warning line instead of an error with a traceback.

BentoML logs every request that fails validation as an ERROR with the full traceback. A bad
request is the client's mistake and is already answered with a 400; under load those
tracebacks cost real CPU and bury actual server errors.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from serving.http.errors import rejection_summary

# BentoML's server loggers write through the handlers of these two; a filter on a handler sees
# every record it writes, whichever child logger made it.
LOGGERS_WITH_HANDLERS = ("bentoml", "")


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
    for name in LOGGERS_WITH_HANDLERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, ClientErrorFilter) for f in handler.filters):
                handler.addFilter(ClientErrorFilter())
