"""The proxy's listener: where it listens, with which TLS, and the refusals at start-up.

Implicit TLS is the default (the local CA's certificate, or the one the user gives).
Plaintext is accepted only on a loopback address and only when asked for explicitly; any
other plaintext listener is refused before a socket is opened, so a password never
crosses a network in the clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from dataclasses import dataclass

from exoimap.errors import ConfigError
from exoimap.proxy.gate import Gate
from exoimap.proxy.meter import Listener
from exoimap.proxy.relay import ClientSession
from exoimap.proxy.upstream import Upstreams

__all__ = ["DEFAULT_LISTEN", "ProxyServer", "check_plaintext", "parse_listen"]

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:1993"


def parse_listen(value: str, *, option: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a host and a port."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{option} wants HOST:PORT (like {DEFAULT_LISTEN}), not {value!r}")
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_plaintext(host: str) -> None:
    """Refuse a plaintext listener anywhere but on loopback."""
    if not _is_loopback(host):
        raise ConfigError(
            f"refusing to listen without TLS on {host}: app passwords would cross the "
            "network in the clear (plaintext is allowed on 127.0.0.1, ::1 or localhost only)"
        )


@dataclass
class ProxyServer:
    """Accepts clients on ``host:port`` and serves each in its own task."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    gate: Gate
    upstreams: Upstreams
    #: Seconds a client has to sign in before it is sent away.
    preauth_timeout: float = 60.0
    #: A STARTTLS port (``tls`` is None then): clients upgrade with this before signing in.
    starttls: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        if self.tls is not None and self.starttls is not None:
            raise ConfigError("a listener has implicit TLS or STARTTLS, not both")
        if self.tls is None and self.starttls is None:
            check_plaintext(self.host)
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._sessions: set[ClientSession] = set()
        self._healed_before = 0
        self._renewed_before = 0

    @property
    def listener(self) -> Listener:
        """What the metrics call this listener."""
        if self.starttls is not None:
            return "starttls"
        return "imap" if self.tls is None else "imaps"

    @property
    def heals(self) -> int:
        """Upstream sessions renewed after an expired token, over all clients so far."""
        return self._healed_before + sum(s.heals for s in self._sessions)

    @property
    def renewals(self) -> int:
        """Upstream sessions replaced before their token expired, over all clients so far."""
        return self._renewed_before + sum(s.renewals for s in self._sessions)

    async def start(self) -> int:
        """Start listening; returns the port (useful with port 0)."""
        try:
            self._server = await asyncio.start_server(
                self._accept, self.host, self.port, ssl=self.tls, limit=1 << 20
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        sockets = self._server.sockets
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.port
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        session = ClientSession(
            reader,
            writer,
            self.gate,
            self.upstreams,
            preauth_timeout=self.preauth_timeout,
            starttls=self.starttls,
        )
        self._sessions.add(session)
        meter = self.upstreams.meter
        meter.client_opened(self.listener)
        try:
            await session.serve()
        except asyncio.CancelledError:
            # The proxy is stopping. Ending quietly, not as cancelled: asyncio's stream
            # server would log a cancelled client handler as an error.
            pass
        except Exception:  # one client's failure must not end the others
            log.exception("a proxy client session failed")
        finally:
            meter.client_closed(self.listener)
            self._clients.discard(task)
            self._sessions.discard(session)
            self._healed_before += session.heals
            self._renewed_before += session.renewals

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        for task in list(self._clients):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()
