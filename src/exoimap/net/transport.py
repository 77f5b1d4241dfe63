"""Encrypted byte streams to an IMAP server, with flow control both ways.

:func:`open_transport` returns a :class:`Transport` only once TLS is established and
verified: implicit TLS by default, or STARTTLS on a plain port when the policy asks for it
(refused when the server does not offer it). Nothing but ``CAPABILITY`` and ``STARTTLS`` is
ever written before TLS, so no credential can leave on a plain connection.

Reading is pull-based: :meth:`Transport.read` hands out what arrived. When the reader falls
behind (for example because a body is being written to a slow disk), the buffered bytes
reach ``high_water`` and the socket is paused, so memory stays bounded whatever the server
sends.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from exoimap.errors import ConnectionLost, RemoteProtocolError, TLSRefused
from exoimap.net.tls import TLSPolicy, map_ssl_error

__all__ = ["Transport", "open_transport"]

#: Buffered bytes above which the socket is paused, and below which it resumes.
HIGH_WATER = 1 << 20
LOW_WATER = 256 << 10
#: Longest line accepted before TLS (greeting, CAPABILITY).
_MAX_PLAIN_LINE = 8192


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.error: BaseException | None = None
        self.paused = False
        #: Statistics: most bytes ever buffered, and how often reading was paused.
        self.peak_buffered = 0
        self.pauses = 0
        self._waiter: asyncio.Future[None] | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        self.peak_buffered = max(self.peak_buffered, self.buffered)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.pauses += 1
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self.eof = True
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._can_write.set()
        self._wake()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_readable(self) -> None:
        if self.chunks or self.eof:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter

    def take(self) -> bytes:
        data = self.chunks.popleft()
        self.buffered -= len(data)
        if self.paused and self.buffered < LOW_WATER and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data


class Transport:
    """A TLS connection: ``read()`` / ``write()`` / ``drain()``, counting bytes moved."""

    def __init__(
        self, transport: asyncio.Transport, protocol: _Protocol, host: str, port: int
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self.host = host
        self.port = port
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def tls_version(self) -> str | None:
        obj = self._transport.get_extra_info("ssl_object")
        return obj.version() if isinstance(obj, ssl.SSLObject) else None

    @property
    def peak_buffered(self) -> int:
        """The most received bytes ever waiting for the reader (bounded by flow control)."""
        return self._protocol.peak_buffered

    @property
    def pauses(self) -> int:
        """How many times the socket was paused because the reader fell behind."""
        return self._protocol.pauses

    @property
    def encrypted(self) -> bool:
        return self.tls_version is not None

    async def read(self) -> bytes:
        """The next bytes received; raises :class:`ConnectionLost` at the end."""
        proto = self._protocol
        await proto.wait_readable()
        if proto.chunks:
            data = proto.take()
            self.bytes_in += len(data)
            return data
        reason = f" ({proto.error.__class__.__name__})" if proto.error else ""
        raise ConnectionLost(f"the server {self.host}:{self.port} closed the connection{reason}")

    def write(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise ConnectionLost(f"the connection to {self.host}:{self.port} is closed")
        self._transport.write(data)
        self.bytes_out += len(data)

    async def drain(self) -> None:
        """Wait until the kernel accepts more data (for large APPENDs)."""
        await self._protocol._can_write.wait()
        if self._protocol.eof and self._transport.is_closing():
            raise ConnectionLost(f"the connection to {self.host}:{self.port} is closed")

    @property
    def closed(self) -> bool:
        return self._transport.is_closing()

    def abort(self) -> None:
        self._transport.abort()

    async def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()
        # Give the TLS layer a moment to send close_notify; never hang on it.
        for _ in range(10):
            if self._protocol.transport is None or self._protocol.eof:
                break
            await asyncio.sleep(0)


async def _read_line(proto: _Protocol, buffer: bytearray, where: str) -> bytes:
    while True:
        end = buffer.find(b"\r\n")
        if end >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            return line
        if len(buffer) > _MAX_PLAIN_LINE:
            raise RemoteProtocolError(f"{where} sent an over-long line before TLS")
        await proto.wait_readable()
        if not proto.chunks:
            raise TLSRefused(f"{where} closed the connection before TLS was established")
        buffer += proto.take()


async def _starttls(
    transport: asyncio.Transport,
    proto: _Protocol,
    ctx: ssl.SSLContext,
    *,
    host: str,
    port: int,
    timeout: float,
) -> asyncio.Transport:
    loop = asyncio.get_running_loop()
    where = f"{host}:{port}"
    buffer = bytearray()
    greeting = await _read_line(proto, buffer, where)
    if not greeting.startswith(b"* OK"):
        raise TLSRefused(f"{where} did not greet with OK before STARTTLS; refusing to continue")
    transport.write(b"S0 CAPABILITY\r\n")
    offered = False
    while True:
        line = await _read_line(proto, buffer, where)
        if line.upper().startswith(b"* CAPABILITY "):
            offered = b"STARTTLS" in line.upper().split()
        if line.startswith(b"S0 "):
            break
    if not offered:
        raise TLSRefused(
            f"{where} does not offer STARTTLS (it may have been stripped by an attacker); "
            "refusing to send credentials without TLS"
        )
    transport.write(b"S1 STARTTLS\r\n")
    while True:
        line = await _read_line(proto, buffer, where)
        if line.startswith(b"S1 "):
            if not line.upper().startswith(b"S1 OK"):
                raise TLSRefused(f"{where} refused STARTTLS; refusing to continue without TLS")
            break
    if buffer or proto.chunks:
        # Bytes after the OK and before the handshake could be injected plaintext.
        raise TLSRefused(f"{where} sent data after accepting STARTTLS; refusing to continue")
    try:
        new = await loop.start_tls(
            transport, proto, ctx, server_hostname=host, ssl_handshake_timeout=timeout
        )
    except (ssl.SSLError, ConnectionError, EOFError) as exc:
        raise map_ssl_error(exc, host, port) from None
    if new is None:  # pragma: no cover - only when the transport closed meanwhile
        raise TLSRefused(f"{where} closed the connection during STARTTLS")
    return new


async def open_transport(
    host: str,
    port: int,
    policy: TLSPolicy,
    *,
    timeout: float = 30.0,
) -> Transport:
    """Connect and establish verified TLS, or raise :class:`TLSRefused` /
    :class:`ConnectionLost`."""
    loop = asyncio.get_running_loop()
    ctx = policy.context()
    where = f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            if policy.starttls:
                transport, proto = await loop.create_connection(_Protocol, host, port)
                try:
                    transport = await _starttls(
                        transport, proto, ctx, host=host, port=port, timeout=timeout
                    )
                except BaseException:
                    transport.abort()
                    raise
                proto.transport = transport
            else:
                transport, proto = await loop.create_connection(
                    _Protocol, host, port, ssl=ctx, server_hostname=host
                )
    except TimeoutError:
        raise ConnectionLost(f"connecting to {where} timed out after {timeout:g} s") from None
    except (ssl.SSLEOFError, ConnectionResetError, ConnectionAbortedError) as exc:
        if policy.starttls:
            raise map_ssl_error(exc, host, port) from None
        # The server went away mid-handshake (a crash, a restart): nothing was refused, and
        # no credential was sent; reconnecting is safe (and bounded by the account's deadline).
        raise ConnectionLost(f"{where} closed the connection during the TLS handshake") from None
    except ssl.SSLError as exc:
        raise map_ssl_error(exc, host, port) from None
    except OSError as exc:
        raise ConnectionLost(f"cannot connect to {where}: {exc.strerror or exc}") from None
    result = Transport(transport, proto, host, port)
    if not result.encrypted:  # pragma: no cover - create_connection(ssl=...) guarantees it
        transport.abort()
        raise TLSRefused(f"{where}: the connection is not encrypted")
    return result
