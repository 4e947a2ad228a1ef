"""A TCP proxy in front of one store that can pass traffic, refuse it, or hang it: the network
faults the suite injects, without touching the store itself.

- `refuse()`: every open connection is closed and new ones are closed at once, as a server
  that was stopped or a `pg_terminate_backend` followed by `ALLOW_CONNECTIONS false`.
- `hang()`: connections stay open but no byte moves either way, as a server that was paused
  with SIGSTOP or a network that drops packets; new connections are accepted and then hang.
- `heal()`: traffic flows again; a hung connection carries on where it stopped.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Literal

Mode = Literal["pass", "refuse", "hang"]
CHUNK = 65536


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.mode: Mode = "pass"
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def refuse(self) -> None:
        self._switch("refuse")

    def hang(self) -> None:
        self._switch("hang")

    def heal(self) -> None:
        self._switch("pass")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _switch(self, mode: Mode) -> None:
        done = threading.Event()

        def switch() -> None:
            self.mode = mode
            if mode == "pass":
                self._flowing.set()
            else:
                self._flowing.clear()
            if mode == "refuse":
                for writer in list(self._writers):
                    writer.close()
            done.set()

        self._loop.call_soon_threadsafe(switch)
        done.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._flowing.set()
        server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        if self.mode == "refuse":
            client.close()
            return
        self._writers.add(client)
        try:
            await self._flowing.wait()
            upstream_reader, upstream = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._writers.discard(client)
            client.close()
            return
        self._writers.add(upstream)
        try:
            await asyncio.gather(
                self._pipe(client_reader, upstream), self._pipe(upstream_reader, client)
            )
        finally:
            for writer in (client, upstream):
                self._writers.discard(writer)
                writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                if writer.is_closing():
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
