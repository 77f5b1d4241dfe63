"""Small IMAP test servers on 127.0.0.1 that record every byte they receive.

They stand in for hostile or broken servers (no TLS, untrusted certificate, stripped
STARTTLS) so the tests can prove that nothing secret left the client.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field


@dataclass
class RecordingServer:
    """Greets, answers CAPABILITY (and STARTTLS when ``offer_starttls``), records bytes."""

    tls: ssl.SSLContext | None = None
    capabilities: str = "IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR"
    starttls_answer: bytes | None = None
    received: bytearray = field(default_factory=bytearray)
    port: int = 0
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> RecordingServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"* OK [CAPABILITY " + self.capabilities.encode() + b"] ready\r\n")
            while True:
                line = await reader.readline()
                if not line:
                    break
                self.received += line
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                verb = rest.split(b" ")[0].upper()
                if verb == b"CAPABILITY":
                    writer.write(b"* CAPABILITY " + self.capabilities.encode() + b"\r\n")
                    writer.write(tag + b" OK done\r\n")
                elif verb == b"STARTTLS" and self.starttls_answer is not None:
                    writer.write(tag + b" " + self.starttls_answer + b"\r\n")
                else:
                    writer.write(tag + b" OK done\r\n")
                await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx
