"""The sandbox Exchange Online IMAP server: implicit TLS, one :class:`Session` per client.

Runs on an asyncio loop (the same loop as the identity half in ``sandbox up``). The
mailboxes live in memory on that loop; :class:`ExchangeControl` lets another thread (a
test) change them "as another client" and inject faults safely.

Example (inside a running loop)::

    server = ExchangeImapServer(identity, ExchangeSettings(), ssl_context=context)
    await server.start()
    ...                                  # clients connect to server.host, server.port
    await server.stop()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as _dt
import logging
import os
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from exoimap.errors import NetworkError
from exoimap.sandbox.exchange.app_requests import AppRequests
from exoimap.sandbox.exchange.auth import Authorizer, IdentityView
from exoimap.sandbox.exchange.config import ExchangeSettings, check_receive_size
from exoimap.sandbox.exchange.mailboxes import Mailboxes
from exoimap.sandbox.exchange.session import Session
from exoimap.sandbox.exchange.smtp import ExchangeSmtpServer
from exoimap.sandbox.faults import Faults
from exoimap.store.memory import MemoryStore

__all__ = ["ExchangeControl", "ExchangeImapServer"]

log = logging.getLogger("exoimap.sandbox.exchange")
T = TypeVar("T")


class ExchangeImapServer:
    """See the module docstring."""

    def __init__(
        self,
        identity: IdentityView,
        settings: ExchangeSettings | None = None,
        *,
        ssl_context: ssl.SSLContext,
        mailboxes: Mailboxes | None = None,
        state_folder: Path | None = None,
        faults: Faults | None = None,
        app_requests: AppRequests | None = None,
    ) -> None:
        self.identity = identity
        self.settings = settings or ExchangeSettings()
        self.ssl_context = ssl_context
        self.mailboxes = mailboxes or Mailboxes(self.settings, state_folder)
        self.faults = faults or Faults()
        #: Commands per app-only client: shared with servers that share the mailboxes.
        self.app_requests = app_requests or AppRequests()
        self.authorizer = Authorizer(identity, self.settings)
        #: SMTP submission (STARTTLS, XOAUTH2) beside IMAP, on the same mailboxes.
        self.smtp = ExchangeSmtpServer(
            self.authorizer,
            identity,
            self.mailboxes,
            ssl_context,
            host=self.settings.host,
            port=self.settings.smtp_port,
            max_size=self.settings.max_receive_size,
        )
        self._server: asyncio.Server | None = None
        self._sessions: set[Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.host = self.settings.host
        self.port = self.settings.port
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Listen (port 0 picks a free port; :attr:`port` tells which)."""
        self.loop = asyncio.get_running_loop()
        try:
            self._server = await asyncio.start_server(
                self._accept,
                self.host,
                self.port,
                ssl=self.ssl_context,
                ssl_handshake_timeout=10,
                reuse_address=True,
            )
        except OSError as exc:
            # asyncio's text repeats the address; the errno's says it once.
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise NetworkError(f"cannot listen on {self.host}:{self.port}: {reason}") from None
        sockname = self._server.sockets[0].getsockname()
        self.port = int(sockname[1])
        log.info("sandbox Exchange IMAP listening on %s:%d", self.host, self.port)
        try:
            await self.smtp.start()
        except BaseException:
            self._server.close()
            raise

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self._sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            if task is not None:
                self._tasks.discard(task)

    @property
    def connections(self) -> int:
        return len(self._sessions)

    def drop_connections(self) -> None:
        """Abort every open connection (no BYE), as a crashed front end would."""
        for session in list(self._sessions):
            session.closing = True
            session.writer.transport.abort()

    async def stop(self) -> None:
        """Stop listening, drop the connections and save the mailboxes (when persistent)."""
        if self._server is not None:
            self._server.close()
            self.drop_connections()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        await self.smtp.stop()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        self.mailboxes.save()

    async def restart(self) -> None:
        """Drop every connection and listen again on the same port (a restarted server)."""
        await self.stop()
        await self.start()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()


class ExchangeControl:
    """Thread-safe handle on a running :class:`ExchangeImapServer` (tests, the admin CLI).

    Every method runs on the server's loop and waits for it, so a test thread can act "as
    another client" and the IDLE sessions see the change at once.
    """

    def __init__(self, server: ExchangeImapServer) -> None:
        self.server = server

    @property
    def faults(self) -> Faults:
        return self.server.faults

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def _call(self, function: Callable[[], T]) -> T:
        loop = self.server.loop
        if loop is None:
            raise NetworkError("the sandbox IMAP server is not running")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return function()

        async def run() -> T:
            return function()

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(run(), loop)
        return future.result(30)

    def _store(self, mailbox: str) -> MemoryStore:
        return self.server.mailboxes.get(mailbox).store

    def restart(self) -> None:
        """Restart the server (every connection drops; same port)."""
        loop = self.server.loop
        if loop is None:
            raise NetworkError("the sandbox IMAP server is not running")
        asyncio.run_coroutine_threadsafe(self.server.restart(), loop).result(30)

    def drop_connections(self) -> None:
        self._call(self.server.drop_connections)

    def app_requests(self, app: str, window: float, since: float = 0.0) -> tuple[int, int, int]:
        """Commands ``app`` sent (app-only), the most within any ``window`` seconds (from
        ``since``, a ``time.monotonic()``), and how many were refused as throttled."""
        log = self.server.app_requests
        return self._call(
            lambda: (log.count(app), log.busiest(app, window, since), log.throttled[app])
        )

    def app_request_times(self, app: str) -> list[float]:
        """When each command ``app`` sent (app-only, admitted) arrived (``time.monotonic()``)."""
        return self._call(lambda: self.server.app_requests.times(app))

    def deliver(
        self,
        mailbox: str,
        data: bytes,
        *,
        folder: str = "INBOX",
        flags: Sequence[str] = (),
        internal_date: _dt.datetime | None = None,
    ) -> int:
        """New mail arrives in ``folder``; returns its UID."""
        return self._call(
            lambda: self._store(mailbox).add_message(
                folder, data, flags=flags, internal_date=internal_date
            )
        )

    def set_flags(
        self,
        mailbox: str,
        folder: str,
        uids: Sequence[int],
        flags: Sequence[str],
        mode: str = "set",
    ) -> dict[int, frozenset[str]]:
        """Another client changes flags (``mode``: set, add, remove)."""
        return self._call(
            lambda: self._store(mailbox).store_flags(folder, uids, frozenset(flags), mode)
        )

    def delete(self, mailbox: str, folder: str, uids: Sequence[int]) -> list[int]:
        """Another client deletes (expunges) messages."""
        return self._call(lambda: self._store(mailbox).expunge_now(folder, uids))

    def move(self, mailbox: str, folder: str, uids: Sequence[int], dest: str) -> dict[int, int]:
        """Another client moves messages; returns old UID -> new UID."""
        return self._call(lambda: self._store(mailbox).move_now(folder, uids, dest))

    def set_max_receive_size(self, mailbox: str, size: int | None) -> None:
        """The admin changes the mailbox's maximum receive size (``Set-Mailbox
        -MaxReceiveSize``); ``None`` goes back to the server's default. Not saved: for a
        lasting limit use ``ExchangeSettings.max_receive_size_by_mailbox``."""
        if size is not None:
            check_receive_size(size, "max_receive_size")
        limit = size if size is not None else self.server.settings.receive_size(mailbox)

        def apply() -> None:
            self.server.mailboxes.get(mailbox).max_receive_size = limit

        self._call(apply)

    def reset_uidvalidity(self, mailbox: str, folder: str) -> int:
        """Give ``folder`` a new UIDVALIDITY (renumbering its messages)."""
        return self._call(lambda: self._store(mailbox).reset_uidvalidity(folder))

    def replace_content(
        self,
        mailbox: str,
        folder: str,
        uid: int,
        data: bytes,
        *,
        internal_date: _dt.datetime | None = None,
    ) -> None:
        """Fault: other content under an existing UID, UIDVALIDITY unchanged (what a
        server that lost its mailboxes and generated new ones under the same UIDVALIDITY
        shows a client)."""
        self._call(
            lambda: self._store(mailbox).replace_content_now(
                folder, uid, data, internal_date=internal_date
            )
        )

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run any function on the server's loop (for what the methods above lack)."""
        return self._call(lambda: function(*args))
