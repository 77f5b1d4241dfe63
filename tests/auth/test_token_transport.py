"""The token session resends a request exactly once when its reused keep-alive connection
died before any byte of a response (the server closed it as the request went out), and
never otherwise: not on a fresh connection, not twice, not once a response had started.

The server here is scripted on purpose (how each connection ends is the point of each test;
no real server closes or resets a connection on cue). The real-server sign-in races are in
test_signin_keep_alive_e2e.py.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests

from exoimap.auth.transport import token_session

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

#: What the server does with the n-th request of a connection: answer it, or end the
#: connection in one of these ways.
Script = Callable[[int, int], str]  # (connection number, request number) -> action


@dataclass
class ScriptedServer:
    """A one-thread HTTP/1.1 server: each connection's requests are handled by ``script``."""

    script: Script
    seen: list[tuple[int, bytes]] = field(default_factory=list)  # (connection, body)
    _listener: socket.socket = field(init=False)
    _current: socket.socket | None = field(init=False, default=None)
    _thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(30)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/token"

    def _serve(self) -> None:
        number = 0
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            number += 1
            self._current = conn
            with conn:
                self._connection(number, conn)

    def _connection(self, number: int, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        for request in range(1, 100):
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = reader.readline()
                if not line:
                    return
                head += line
            length = next(
                int(h.split(b":")[1])
                for h in head.split(b"\r\n")
                if h.lower().startswith(b"content-length")
            )
            self.seen.append((number, reader.read(length)))
            action = self.script(number, request)
            if action == "answer":
                conn.sendall(ANSWER)
                continue
            if action == "close":  # a clean close, no byte of a response
                conn.shutdown(socket.SHUT_RDWR)
            elif action == "reset":  # a reset, no byte of a response
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif action == "head-then-reset":  # a response started, then a reset
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif action == "head-then-close":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{")
                conn.shutdown(socket.SHUT_RDWR)
            return

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread's accept()
        self._listener.close()
        if self._current is not None:  # a kept-alive connection the thread still reads
            with contextlib.suppress(OSError):  # unless the script ended it already
                self._current.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=30)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    session = token_session(None, timeout=30)
    yield session
    session.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _post(session: requests.Session, server: ScriptedServer, body: str) -> requests.Response:
    return session.post(server.url, data={"poll": body})


@pytest.mark.parametrize("proxied", [False, True])
@pytest.mark.parametrize("ending", ["close", "reset"])
def test_a_reused_connection_that_dies_before_any_response_is_resent_once(
    serve: Callable[[Script], ScriptedServer],
    session: requests.Session,
    ending: str,
    proxied: bool,
) -> None:
    # The first connection answers one request, then dies as the second arrives.
    server = serve(lambda conn, req: ending if (conn, req) == (1, 2) else "answer")
    if proxied:  # the scripted server as an HTTP proxy: its connections are pooled too
        session.proxies = {"http": server.url.removesuffix("/token")}
    assert _post(session, server, "first").status_code == 200
    assert _post(session, server, "second").status_code == 200
    assert _post(session, server, "third").status_code == 200
    assert server.seen == [
        (1, b"poll=first"),
        (1, b"poll=second"),  # died unanswered on the pooled connection...
        (2, b"poll=second"),  # ...and was sent again on a new one, which stays in use
        (2, b"poll=third"),
    ]


@pytest.mark.parametrize("ending", ["head-then-reset", "head-then-close"])
def test_a_request_whose_response_had_started_is_never_resent(
    serve: Callable[[Script], ScriptedServer], session: requests.Session, ending: str
) -> None:
    server = serve(lambda conn, req: ending if (conn, req) == (1, 2) else "answer")
    assert _post(session, server, "first").status_code == 200
    with pytest.raises(requests.exceptions.RequestException):
        _post(session, server, "second")  # requests reads the whole body before returning
    assert server.seen == [(1, b"poll=first"), (1, b"poll=second")]


def test_a_fresh_connection_that_dies_before_any_response_is_not_resent(
    serve: Callable[[Script], ScriptedServer], session: requests.Session
) -> None:
    # Nothing was stale here: the server took the request and chose to end the connection.
    server = serve(lambda conn, req: "close" if conn == 1 else "answer")
    with pytest.raises(requests.exceptions.ConnectionError):
        _post(session, server, "only")
    assert server.seen == [(1, b"poll=only")]


def test_a_request_is_resent_at_most_once(
    serve: Callable[[Script], ScriptedServer], session: requests.Session
) -> None:
    server = serve(lambda conn, req: "reset" if (conn, req) in {(1, 2), (2, 1)} else "answer")
    assert _post(session, server, "first").status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        _post(session, server, "second")
    assert server.seen == [(1, b"poll=first"), (1, b"poll=second"), (2, b"poll=second")]
    assert _post(session, server, "third").status_code == 200  # the next request goes on
