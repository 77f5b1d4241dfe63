"""A listening TCP socket for the project's HTTP servers (the sandbox's identity platform,
``exoimap console``), bound before the server starts so that its port is known."""

from __future__ import annotations

import socket

from exoimap.errors import NetworkError

__all__ = ["listening_socket"]


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening, non-blocking socket (port 0: the OS picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this: without it, Nagle + delayed ACK add ~40 ms per
    # response (uvicorn writes headers and body as separate TLS records).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise NetworkError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock
