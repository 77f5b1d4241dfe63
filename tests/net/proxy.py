"""A TCP proxy in front of a real server that cuts connections on demand (fault injection).

TLS passes through untouched (the client still verifies the real server's certificate);
``cut_after`` closes the next connection once that many bytes went from server to client.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class CuttingProxy:
    target_port: int
    #: For each new connection in turn: cut after this many server->client bytes (None: never).
    cuts: list[int | None] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await self._server.wait_closed()

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        cut = self.cuts[self.connections] if self.connections < len(self.cuts) else None
        self.connections += 1
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, limit: int | None
        ) -> None:
            sent = 0
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if limit is not None and sent + len(data) >= limit:
                        dst.write(data[: limit - sent])
                        await dst.drain()
                        break
                    dst.write(data)
                    sent += len(data)
                    await dst.drain()
            for w in (c_writer, s_writer):
                w.transport.abort()

        up = asyncio.create_task(pump(c_reader, s_writer, None))
        down = asyncio.create_task(pump(s_reader, c_writer, cut))
        self._tasks |= {up, down}
        await asyncio.gather(up, down, return_exceptions=True)
        self._tasks -= {up, down}
