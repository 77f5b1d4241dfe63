"""The HTTP session MSAL talks to the identity platform through.

Servers close idle keep-alive connections (uvicorn after 5 s by default, load balancers
after minutes, some with a reset). A token request sent on a pooled connection at the
moment the server closes it dies before any answer, and the device code flow, which polls
every few seconds, meets that race sooner or later on a busy machine. So a request that
went out on a *reused* connection which then ended before the first byte of a response is
sent once more on a new connection. Nothing else is retried here: a fresh connection that
dies, a timeout, or a response that started and broke are raised as before (the
transient-failure policy of :mod:`exoimap.auth.flows` decides about those), because the
server may have acted on a request it began to answer.
"""

from __future__ import annotations

import http.client
import logging
from pathlib import Path
from typing import Any, ClassVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from exoimap.errors import ConfigError

__all__ = ["StaleConnectionClosed", "TokenSession", "token_session"]

logger = logging.getLogger("exoimap.auth")


class StaleConnectionClosed(http.client.RemoteDisconnected):
    """A reused keep-alive connection ended before the first byte of the response."""


class _HeadWatchingResponse(http.client.HTTPResponse):
    """Tells "no byte of a response arrived" apart from "the response broke part-way"."""

    def begin(self) -> None:
        try:
            self.fp.peek(1)  # waits for the first byte without consuming it
        except ConnectionError as exc:  # reset or aborted before any byte arrived
            raise http.client.RemoteDisconnected(f"closed without a response ({exc})") from exc
        super().begin()  # an empty read (a clean close) raises RemoteDisconnected itself


class _ReuseAwareConnection(HTTPConnection):
    """Knows whether a request went out on a connection that had already answered one."""

    response_class = _HeadWatchingResponse
    _answered_on: object = None  # the socket the last complete response head came over

    def getresponse(self) -> Any:
        reused = self.sock is not None and self.sock is self._answered_on
        try:
            response = super().getresponse()
        except http.client.RemoteDisconnected as exc:
            if reused:
                raise StaleConnectionClosed(str(exc)) from exc
            raise
        self._answered_on = self.sock
        return response


class _ReuseAwareTlsConnection(_ReuseAwareConnection, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _ReuseAwareConnection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _ReuseAwareTlsConnection


class _ReuseAwareAdapter(HTTPAdapter):
    _POOLS: ClassVar = {"http": _Pool, "https": _TlsPool}

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS needs its own connection classes
            manager.pool_classes_by_scheme = self._POOLS
        return manager


class TokenSession(requests.Session):
    """A requests session with a default timeout that remembers the last HTTP status and
    resends a request whose pooled connection the server had closed (see the module)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout
        self.last_status: int | None = None
        adapter = _ReuseAwareAdapter()
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        try:
            return super().send(request, **kwargs)
        except requests.exceptions.ConnectionError as exc:
            if not _stale(exc) or not isinstance(request.body, str | bytes | None):
                raise  # (a streamed body was used up: it cannot go out again)
        logger.info("the server closed an idle connection as a request went out: resending")
        return super().send(request, **kwargs)  # on a new connection: it cannot be stale

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        self.last_status = None
        response = super().request(method, url, *args, **kwargs)
        self.last_status = response.status_code
        return response


def _stale(exc: BaseException) -> bool:
    """Whether a StaleConnectionClosed is behind ``exc``: urllib3 and requests wrap it once
    directly, twice through a proxy (as an argument, or a MaxRetryError's reason)."""
    behind: list[object] = [exc]
    for _ in range(8):  # a few layers at most; never follow a cycle for ever
        if any(isinstance(e, StaleConnectionClosed) for e in behind):
            return True
        behind = [
            inner
            for e in behind
            if isinstance(e, BaseException)
            for inner in (*e.args, getattr(e, "reason", None))
            if isinstance(inner, BaseException)
        ]
    return False


def token_session(ca_file: Path | None, timeout: float) -> TokenSession:
    """The session for one account: trusting ``ca_file`` only, when it names one."""
    session = TokenSession(timeout)
    if ca_file is not None:
        if not ca_file.is_file():
            raise ConfigError(f"the CA file {ca_file} does not exist", key="ca_file")
        # REQUESTS_CA_BUNDLE would otherwise override verify= (see exoimap.auth.flows).
        session.trust_env = False
        session.verify = str(ca_file)
    return session
