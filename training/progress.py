"""A log line for every long step of training, with its time, so a user sees where the minutes
go."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("training")


@contextmanager
def step(what: str) -> Iterator[Callable[[str], None]]:
    """Logs `what` when it starts and, with its time, when it ends; the step may add a note
    (`done("best iteration 812")`) to the closing line."""
    notes: list[str] = []
    started = time.perf_counter()
    log.info("%s ...", what)
    yield notes.append
    extra = f" ({'; '.join(notes)})" if notes else ""
    log.info("%s: %.1f s%s", what, time.perf_counter() - started, extra)
