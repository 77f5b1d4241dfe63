"""A one-shot loopback HTTP listener for the browser sign-in's redirect (RFC 8252 §7.3).

It binds 127.0.0.1 on a port the OS chooses, waits for the single redirect that carries
``code`` and ``state`` (or ``error``) in a query or a ``form_post`` body, answers with a
short page, and stops. The redirect URI it names is ``http://localhost:PORT``, as MSAL's own
listener does: the Entra portal takes ``http://localhost`` as typed (``http://127.0.0.1`` only
through the manifest), and Entra ignores a loopback URI's port, not its host name. Our own
listener (rather than MSAL's) lets the caller print the URL on machines without a browser,
and lets tests drive the sign-in page with an HTTP client.
"""

from __future__ import annotations

import http.server
import threading
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

__all__ = ["REGISTERED_REDIRECT_URI", "LoopbackListener"]

#: The redirect URI to register for the browser flow (Entra matches any port on it).
REGISTERED_REDIRECT_URI = "http://localhost"

_DONE_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>exoimap</title>"
    b"<p>Sign-in finished. You can close this window and return to the terminal.</p>"
)


_MAX_BODY = 64 * 1024


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer(parse_qs(urlsplit(self.path).query))

    def do_POST(self) -> None:
        """``response_mode=form_post`` (RFC 9700 §4.3.1): the code never sits in a URL."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self.send_response(413)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.rfile.read(length).decode("utf-8", "replace")
        self._answer(parse_qs(body))

    def _answer(self, query: dict[str, list[str]]) -> None:
        params = {k: v[0] for k, v in query.items() if v}
        if "code" not in params and "error" not in params:
            # Browsers also ask for /favicon.ico and the like: not the redirect.
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(_DONE_PAGE)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(_DONE_PAGE)
        self.server.deliver(params)

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default access log: the query string carries the auth code."""


class _Server(http.server.HTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.params: dict[str, str] | None = None
        self.arrived = threading.Event()

    def deliver(self, params: dict[str, str]) -> None:
        if self.params is None:
            self.params = params
        self.arrived.set()


class LoopbackListener:
    """``with LoopbackListener() as listener: ... listener.redirect_uri ... listener.wait()``"""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="exoimap-loopback", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def redirect_uri(self) -> str:
        """What the app registration must hold, without the port: ``http://localhost``."""
        return f"{REGISTERED_REDIRECT_URI}:{self.port}"

    def __enter__(self) -> LoopbackListener:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait(self, timeout: float) -> dict[str, str] | None:
        """The redirect's query parameters; None when nothing arrived within ``timeout``."""
        if not self._server.arrived.wait(timeout):
            return None
        return self._server.params
