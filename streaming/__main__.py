"""`python -m streaming`: score customer records from Kafka until stopped (SIGTERM or Ctrl-C
finish the batch in hand first)."""

from __future__ import annotations

import asyncio
import logging
import signal
import tempfile
from pathlib import Path
from typing import Any

import typer
from prometheus_client import start_http_server

from cli.runner import run
from history.sinks import sink_for
from history.store import History
from streaming.champion import follow_champion
from streaming.consumer import StreamConsumer
from streaming.metrics import MODEL
from streaming.settings import StreamSettings

log = logging.getLogger("streaming")
app = typer.Typer(add_completion=False)


@app.command()
def consume() -> None:
    """Read customer records from CHURN_STREAM_INPUT_TOPIC, publish one decision each to
    CHURN_STREAM_OUTPUT_TOPIC (bad records to CHURN_STREAM_DEAD_LETTER_TOPIC), and record every
    decision once in the prediction history."""
    settings = StreamSettings()
    history = History.open(settings.history) if settings.history.enabled else None
    folder = Path(tempfile.gettempdir()) / "churn-stream-models"
    served_model, api, follower = follow_champion(settings, folder)
    served = served_model.current
    MODEL.labels(served.name, served.version).set(1)
    served_model.on_swap(lambda old, new: _show_model(old.version, new.version, new.name))
    if settings.stream_metrics_port:
        start_http_server(settings.stream_metrics_port)
    sink = sink_for(history.engine) if history is not None else None
    follower.start()
    try:
        asyncio.run(
            _until_stopped(StreamConsumer, settings, served_model, api.customer, history, sink)
        )
    finally:
        follower.close()
        if sink is not None:
            sink.close()


async def _until_stopped(make: type[StreamConsumer], *args: Any) -> None:
    """Run a consumer made in the event loop (aiokafka's clients need one) until SIGTERM or
    SIGINT."""
    stream = make(*args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stream.run(stop)


def _show_model(old: str, new: str, name: str) -> None:
    MODEL.remove(name, old)
    MODEL.labels(name, new).set(1)
    log.info("Now scoring with %s version %s (was %s)", name, new, old)


if __name__ == "__main__":
    run(app)
