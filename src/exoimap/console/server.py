"""Serving the console with uvicorn: on a socket bound before the server starts
(:func:`exoimap.net.listen.listening_socket`: the port is known, even when 0 asked the system
for one), over TLS when given a certificate and key. :class:`ConsoleServer` runs it in a
thread, for tests and embedding."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from exoimap.errors import ConfigError, NetworkError

__all__ = ["ConsoleServer", "is_loopback", "parse_listen"]


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as host and port."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"--listen wants HOST:PORT, such as 127.0.0.1:8443, not {value!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConsoleServer:
    """uvicorn on ``sock``; ``run`` blocks, ``start``/``stop`` use a thread."""

    def __init__(
        self, app: ASGIApp, sock: socket.socket, *, cert: Path | None, key: Path | None
    ) -> None:
        self.sock = sock
        config = uvicorn.Config(
            app,
            ssl_certfile=str(cert) if cert else None,
            ssl_keyfile=str(key) if key else None,
            log_level="warning",
            server_header=False,
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def run(self) -> None:
        self._server.run(sockets=[self.sock])

    def start(self, timeout: float = 30.0) -> None:
        self._thread = threading.Thread(target=self.run, name="exoimap-console", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise NetworkError("the console did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.sock.close()
