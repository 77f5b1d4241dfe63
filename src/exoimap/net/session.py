"""One authenticated IMAP connection: commands in flight, FETCH bodies streamed.

:class:`ImapSession` drives a :class:`~exoimap.protocol.client.ClientConnection` over a
verified TLS :class:`~exoimap.net.transport.Transport`. It does not retry anything; that is
:class:`exoimap.net.imap.ImapClient`'s job. Reading is pull-driven: whoever waits for a
result reads the socket until that result is there, so a slow body consumer simply stops
the reading and the transport pauses the socket (memory stays bounded).

Several commands may be in flight (``send()`` then ``wait()``); a session is meant to be
driven by one task at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import deque
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import cast

from exoimap import audit
from exoimap.errors import (
    ConnectionLost,
    ImapAuthenticationFailed,
    LocalProtocolError,
    MessageError,
    RemoteProtocolError,
    SessionInvalidated,
    Throttled,
    TLSRefused,
)
from exoimap.net.credentials import (
    CheckedToken,
    CheckedTokenSource,
    Credentials,
    OAuth2Credentials,
    expiry_seconds,
)
from exoimap.net.explain import explain_auth_failure, is_not_connected
from exoimap.net.pacing import pace
from exoimap.net.tls import TLSPolicy
from exoimap.net.transport import Transport, open_transport
from exoimap.protocol import commands as c
from exoimap.protocol import sasl
from exoimap.protocol.answers import connection_lost_for, throttle_backoff
from exoimap.protocol.client import ClientConnection
from exoimap.protocol.events import (
    NEED_DATA,
    BodyChunk,
    CommandDone,
    ConnectionClosed,
    FetchEnd,
    FetchStart,
    Greeting,
)
from exoimap.protocol.types import (
    ContinuationRequest,
    ExistsResponse,
    ExpungeResponse,
    FetchResponse,
    RecentResponse,
    Response,
    SearchResponse,
    SequenceSet,
    Status,
    StatusResponse,
)
from exoimap.secrets import Secret
from exoimap.untrusted import shown

__all__ = [
    "EXCHANGE_GREETING",
    "Endpoint",
    "EventSink",
    "IdleRefused",
    "ImapSession",
    "NetEvent",
    "Reply",
    "ResponseLimits",
]

EXCHANGE_GREETING = "The Microsoft Exchange IMAP4 service is ready."
#: What ends an IDLE early: the selected folder changed.
_IDLE_WAKE = (ExistsResponse, ExpungeResponse, RecentResponse, FetchResponse)
#: Body literals at least this long are streamed in chunks instead of buffered.
STREAM_THRESHOLD = 32 << 10


class IdleRefused(RemoteProtocolError):
    """The server answered IDLE with NO or BAD; the session is good for other commands."""


@dataclass(frozen=True)
class ResponseLimits:
    """How much a server may make one command buffer before the connection is dropped.

    A command's untagged responses (a listing's FETCH lines, LIST, SEARCH...) are kept until
    it completes; a server could send them without end. A folder's listing legitimately has
    one FETCH per message (two, counting a flag change reported meanwhile), so the count is
    allowed ``responses`` beyond twice the messages the selected folder holds (its EXISTS),
    and their estimated size in memory ``bytes`` beyond ``bytes_per_message`` a message.
    """

    responses: int = 50_000
    bytes: int = 64 << 20
    bytes_per_message: int = 4096


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect."""

    host: str
    port: int = 993
    tls: TLSPolicy = field(default_factory=TLSPolicy)
    connect_timeout: float = 30.0
    #: Longest silence while waiting for a response before the connection counts as lost.
    read_timeout: float = 300.0
    limits: ResponseLimits = field(default_factory=ResponseLimits)
    #: Non-synchronising literals: ``None`` where the server offers LITERAL+/LITERAL-,
    #: ``False`` never (each literal waits for the server's ``+``).
    literal_plus: bool | None = None


@dataclass(frozen=True)
class NetEvent:
    """A connection-level event for the audit log and progress: never carries a secret.

    ``kind`` is ``connect``, ``auth``, ``auth_failed``, ``disconnect``, ``throttled``,
    ``retry``, ``reconnect`` (a further failed connect to a server already failing) or
    ``refresh``.
    """

    kind: str
    host: str
    port: int
    tls_version: str | None = None
    mechanism: str | None = None
    user: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    detail: str = ""
    wait: float | None = None


EventSink = Callable[[NetEvent], None]


@dataclass
class Reply:
    """A completed command: its tagged response and the untagged responses seen meanwhile."""

    done: CommandDone
    untagged: list[Response]

    @property
    def ok(self) -> bool:
        return self.done.ok


@dataclass
class _Pending:
    command: c.Command
    untagged: list[Response] = field(default_factory=list)
    #: the estimated memory the untagged responses take (see :func:`_footprint`)
    untagged_bytes: int = 0
    done: CommandDone | None = None
    #: For streaming fetches: FetchStart / bytes / FetchEnd / FetchResponse in arrival order.
    items: deque[object] | None = None
    #: For a streaming UID FETCH: the UIDs it asked for (its messages are routed by UID).
    uids: SequenceSet | None = None
    continuations: deque[ContinuationRequest] = field(default_factory=deque)


class ImapSession:
    """A connected (and, after :meth:`authenticate`, signed-in) IMAP session."""

    def __init__(
        self,
        transport: Transport,
        conn: ClientConnection,
        endpoint: Endpoint,
        emit: EventSink,
        account: str | None = None,
    ) -> None:
        self.transport = transport
        self.account = account
        #: Ties this connection's audit records together.
        self.connection_id = secrets.token_hex(6)
        self.conn = conn
        self.endpoint = endpoint
        self._emit = emit
        self.greeting: StatusResponse | None = None
        self.exchange = False
        self.user: str | None = None
        self.mechanism: str | None = None
        self.selected: str | None = None
        self.token_expires_at: float | None = None
        #: What the sign-in layer verified about the token sent (for explaining a refusal).
        self._checked_token: CheckedToken | None = None
        #: When the client should replace this session (token refresh); set by the client.
        self.refresh_at: float | None = None
        self.commands_sent = 0
        self._pending: dict[str, _Pending] = {}
        #: the streaming fetch the FETCH response being received (a body literal) goes to
        self._streaming: _Pending | None = None
        self._error: BaseException | None = None
        self._consecutive_bad = 0
        #: messages in the selected folder, as the latest EXISTS said (for the limits)
        self._exists = 0
        self._pump_lock = asyncio.Lock()
        self.opened_at = time.monotonic()

    # --- opening --------------------------------------------------------------------------

    @classmethod
    async def open(
        cls, endpoint: Endpoint, emit: EventSink, *, account: str | None = None
    ) -> ImapSession:
        """Connect with verified TLS, read the greeting and the capabilities."""
        transport = await open_transport(
            endpoint.host, endpoint.port, endpoint.tls, timeout=endpoint.connect_timeout
        )
        conn = ClientConnection(
            stream_threshold=STREAM_THRESHOLD, literal_plus=endpoint.literal_plus
        )
        if endpoint.tls.starttls:
            # The plain-text greeting was consumed before TLS; its capabilities are void.
            conn.receive_data(b"* OK TLS established\r\n")
        session = cls(transport, conn, endpoint, emit, account)
        try:
            async with asyncio.timeout(endpoint.connect_timeout):
                await session._read_greeting()
                await session.refresh_capabilities()
        except TimeoutError:
            session.transport.abort()
            raise ConnectionLost(f"{endpoint.host}:{endpoint.port} did not greet in time") from None
        except BaseException:
            session.transport.abort()
            raise
        session._event("connect", detail=session.greeting.text if session.greeting else "")
        return session

    async def _read_greeting(self) -> None:
        while self.greeting is None:
            event = self.conn.next_event()
            if event is NEED_DATA:
                self.conn.receive_data(await self._read())
                continue
            if isinstance(event, Greeting):
                self.greeting = event.response
                if event.response.status is Status.BYE:
                    raise ConnectionLost(
                        f"the server refused the connection: {shown(event.response.text)}"
                    )
                self.exchange = event.response.text.startswith(EXCHANGE_GREETING)
                return
            raise RemoteProtocolError("expected a greeting")

    @property
    def capabilities(self) -> frozenset[str]:
        return self.conn.capabilities

    async def refresh_capabilities(self) -> frozenset[str]:
        reply = await self.command(c.Capability())
        if not reply.ok:
            raise RemoteProtocolError(f"CAPABILITY failed: {shown(reply.done.text)}")
        return self.conn.capabilities

    # --- events ---------------------------------------------------------------------------

    def _event(self, kind: str, *, detail: str = "", wait: float | None = None) -> None:
        self._audit(kind, detail)
        self._emit(
            NetEvent(
                kind=kind,
                host=self.endpoint.host,
                port=self.endpoint.port,
                tls_version=self.transport.tls_version,
                mechanism=self.mechanism,
                user=self.user,
                bytes_in=self.transport.bytes_in,
                bytes_out=self.transport.bytes_out,
                detail=detail,
                wait=wait,
            )
        )

    def _audit(self, kind: str, detail: str) -> None:
        host, conn_id = self.endpoint.host, self.connection_id
        event: audit.AuditEvent
        if kind == "connect":
            event = audit.ImapConnected(
                account=self.account,
                host=host,
                port=self.endpoint.port,
                tls_version=self.transport.tls_version,
                connection=conn_id,
            )
        elif kind == "auth":
            event = audit.ImapAuthenticated(
                account=self.account,
                host=host,
                mechanism=self.mechanism or "",
                username=self.user,
                connection=conn_id,
            )
        elif kind == "auth_failed":
            event = audit.ImapAuthFailed(
                account=self.account,
                host=host,
                mechanism=self.mechanism or "",
                username=self.user,
                error=detail,
                connection=conn_id,
            )
        elif kind == "disconnect":
            event = audit.ImapClosed(
                account=self.account,
                host=host,
                bytes_sent=self.transport.bytes_out,
                bytes_received=self.transport.bytes_in,
                reason=detail,
                connection=conn_id,
            )
        else:
            return
        audit.emit(event)

    # --- authentication -------------------------------------------------------------------

    async def authenticate(self, credentials: Credentials) -> None:
        """Sign in; raises :class:`ImapAuthenticationFailed` listing likely causes."""
        if not self.transport.encrypted:  # belt and braces: open() never returns plain text
            raise TLSRefused("refusing to send credentials on an unencrypted connection")
        self.user = credentials.user
        mechanism = credentials.mechanism
        self.mechanism = mechanism
        caps = self.capabilities
        if mechanism == "LOGIN":
            if "LOGINDISABLED" in caps:
                raise self._auth_failed("the server disables LOGIN", "LOGINDISABLED")
            assert not isinstance(credentials, OAuth2Credentials)
            reply = await self.command(c.Login(credentials.user, credentials.password))
            await self._after_auth(reply)
            return
        if f"AUTH={mechanism}" not in caps:
            raise self._auth_failed(f"the server does not offer AUTH={mechanism}", "")
        message: Secret[bytes]
        if isinstance(credentials, OAuth2Credentials):
            token = await credentials.tokens.access_token()
            self.token_expires_at = expiry_seconds(credentials.tokens)
            if isinstance(credentials.tokens, CheckedTokenSource):
                self._checked_token = credentials.tokens.checked_token()
            if mechanism == "XOAUTH2":
                message = sasl.xoauth2(credentials.user, token)
            else:
                message = sasl.oauthbearer(
                    credentials.user, token, host=self.endpoint.host, port=self.endpoint.port
                )
        else:
            message = sasl.plain(credentials.user, credentials.password)
        inline = "SASL-IR" in caps
        tag = await self.send_paced(c.Authenticate(mechanism, message if inline else None))
        pending = self._pending[tag]
        sent = inline
        while True:
            await self._pump(lambda: pending.done is not None or bool(pending.continuations))
            if pending.done is not None:
                break
            pending.continuations.popleft()
            if not sent:
                self.conn.send(c.AuthenticateResponse(message))
                sent = True
            else:
                # An error challenge (JSON for XOAUTH2/OAUTHBEARER): answer it so the server
                # completes the command with NO.
                empty = b"\x01" if mechanism == "OAUTHBEARER" else b""
                self.conn.send(c.AuthenticateResponse(Secret(empty)))
            self._flush()
        del self._pending[tag]
        await self._after_auth(Reply(pending.done, pending.untagged))

    async def _after_auth(self, reply: Reply) -> None:
        if not reply.ok:
            self.check_throttle(reply)
            raise self._auth_failed(reply.done.text, reply.done.text)
        # Exchange sends no capabilities with the OK; its post-login list differs.
        caps_reply = await self.command(c.Capability())
        if not caps_reply.ok:
            raise self._auth_failed(caps_reply.done.text, caps_reply.done.text)
        self._event("auth")

    def _auth_failed(self, reason: str, server_text: str) -> ImapAuthenticationFailed:
        error = explain_auth_failure(
            host=self.endpoint.host,
            user=self.user or "?",
            mechanism=self.mechanism or "?",
            server_text=server_text or reason,
            exchange=self.exchange,
            checked=self._checked_token,
        )
        cause = "not-connected" if is_not_connected(server_text) else (reason or "refused")
        self._event("auth_failed", detail=cause)
        return error

    # --- commands -------------------------------------------------------------------------

    def send(self, command: c.Command, *, stream: bool = False) -> str:
        """Queue a command and write it out at once; returns its tag (see :meth:`wait`).

        Unpaced: every command of this class goes through :meth:`send_paced`, so a pacer
        (a tenant's request budget) counts each one; only a relay passing on its own
        client's commands calls this directly."""
        self._check_usable()
        tag = self.conn.send(command)
        self.commands_sent += 1
        pending = _Pending(command, items=deque() if stream else None)
        if stream and isinstance(command, c.Fetch) and command.uid:
            pending.uids = command.sequence_set
        self._pending[tag] = pending
        self._flush()
        return tag

    async def send_paced(self, command: c.Command, *, stream: bool = False) -> str:
        """:meth:`send`, once the pacer (:mod:`exoimap.net.pacing`) lets it go."""
        await pace()
        return self.send(command, stream=stream)

    async def wait(self, tag: str) -> Reply:
        """Wait for the command ``tag`` to complete (its untagged responses included)."""
        pending = self._pending[tag]
        await self._pump(lambda: pending.done is not None)
        del self._pending[tag]
        assert pending.done is not None
        return Reply(pending.done, pending.untagged)

    async def command(self, command: c.Command) -> Reply:
        """Send one command and wait for it. NO/BAD are returned, not raised, except
        throttling (:class:`~exoimap.errors.Throttled`)."""
        reply = await self.wait(await self.send_paced(command))
        self.check_throttle(reply)
        return reply

    def check_throttle(self, reply: Reply) -> None:
        if reply.ok:
            return
        backoff = throttle_backoff(reply.done.response)
        if backoff is not None:
            self._event("throttled", detail=reply.done.text, wait=backoff)
            raise Throttled(backoff)

    async def next_fetch_item(self, tag: str) -> object | None:
        """The next item of the streaming fetch ``tag``: a FetchStart, ``bytes`` of a body,
        a FetchEnd or a whole FetchResponse; None once the command completed (then
        :meth:`wait` gives its result)."""
        pending = self._pending[tag]
        items = pending.items
        assert items is not None
        if not items and pending.done is None:
            await self._pump(lambda: bool(items) or pending.done is not None)
        return items.popleft() if items else None

    async def send_append(self, command: c.Append, chunks: AsyncIterable[bytes]) -> str:
        """Send an APPEND whose message (``command.size`` bytes, ``message=None``) comes from
        ``chunks``, with flow control; returns the tag (see :meth:`wait`). Raises
        :class:`MessageError` and closes the session if the chunks do not add up to the
        announced size (the connection is then out of step)."""
        tag = await self.send_paced(command)
        pending = self._pending[tag]
        if self._literal_held():
            # A synchronising literal (or one queued behind another's): wait for the
            # server's "+" (or its refusal).
            # Refused instead (a NO): the message is still read through, and the protocol
            # core drops its bytes, so the connection stays in step.
            await self._pump(lambda: pending.done is not None or not self._literal_held())
        sent = 0
        size = command.size or 0
        try:
            async for chunk in chunks:
                if sent + len(chunk) > size:
                    raise MessageError(
                        f"the message is longer than the {size} bytes announced",
                        retryable=False,
                    )
                self.conn.send_literal_data(chunk)
                sent += len(chunk)
                self._flush()
                await self.transport.drain()
        except BaseException:
            self._error = ConnectionLost("an APPEND was interrupted; the session is closed")
            self.transport.abort()
            raise
        if sent != size:
            self._error = ConnectionLost("an APPEND was short; the session is closed")
            self.transport.abort()
            raise MessageError(
                f"the message has {sent} bytes, not the {size} announced", retryable=False
            )
        self._flush()
        return tag

    async def idle(self, seconds: float) -> list[Response]:
        """IDLE in the selected folder for at most ``seconds``, ending early once the
        server reports a change (EXISTS, EXPUNGE, RECENT, FETCH); then DONE. Returns the
        untagged responses seen. Waits longer than the endpoint's read timeout are fine:
        silence is expected while idling."""
        tag = await self.send_paced(c.Idle())
        pending = self._pending[tag]
        await self._pump(lambda: pending.done is not None or bool(pending.continuations))
        if pending.done is None:
            deadline = time.monotonic() + seconds
            # wake on a change, in slices shorter than the read timeout (which aborts)
            while not any(isinstance(r, _IDLE_WAKE) for r in pending.untagged):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, self.endpoint.read_timeout / 2)):
                        await self._pump(
                            lambda: any(isinstance(r, _IDLE_WAKE) for r in pending.untagged)
                        )
            self.conn.send(c.Done())
            self._flush()
        reply = await self.wait(tag)
        self.check_throttle(reply)
        if not reply.ok:
            raise IdleRefused(f"IDLE refused: {shown(reply.done.text)}")
        return reply.untagged

    def _literal_held(self) -> bool:
        # The protocol core holds a synchronising literal back until the server's "+".
        return self.conn.literal_held

    def _check_usable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._consecutive_bad >= 2:
            # Exchange drops the connection after a third BAD in a row: never send it.
            self._error = ConnectionLost(
                "two commands in a row were rejected; reconnecting instead of risking a third"
            )
            self.transport.abort()
            raise self._error

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.transport.closed:
            # When the server has closed, the bytes are dropped: reading what it sent before
            # closing (messages, then BYE or the end) raises the error that says why.
            self.transport.write(data)

    async def drain(self) -> None:
        await self.transport.drain()

    # --- reading --------------------------------------------------------------------------

    async def _read(self) -> bytes:
        try:
            async with asyncio.timeout(self.endpoint.read_timeout):
                return await self.transport.read()
        except TimeoutError:
            self.transport.abort()
            raise ConnectionLost(
                f"{self.endpoint.host} sent nothing for {self.endpoint.read_timeout:g} s"
            ) from None

    async def _pump(self, ready: Callable[[], bool]) -> None:
        if ready():
            return
        async with self._pump_lock:
            while not ready():
                if self._error is not None:
                    raise self._error
                try:
                    event = self.conn.next_event()
                    if event is NEED_DATA:
                        self._flush()
                        if ready():  # e.g. the "+" a held-back literal waited for
                            return
                        data = await self._read()
                        self.conn.receive_data(data)
                        continue
                    self._dispatch(event)
                except ConnectionLost as exc:
                    self.transport.abort()
                    raise self._fail(exc) from None
                except RemoteProtocolError as exc:
                    self.transport.abort()
                    raise self._fail(exc) from None

    def _fail(self, exc: BaseException) -> BaseException:
        if self._error is None:
            bye = self.conn.bye
            if bye is not None:
                exc = connection_lost_for(bye)
            self._error = exc
            self._event("disconnect", detail=str(exc))
        return self._error

    def _fetch_target(self, uid: int | None) -> _Pending | None:
        """The streaming fetch a message belongs to: the one that asked for its UID, as a
        server may interleave its answers to pipelined commands (RFC 3501 5.5; Dovecot does
        when its output blocks), else the oldest one running, which then refuses it."""
        running = [p for p in self._pending.values() if p.items is not None and p.done is None]
        for pending in running:
            if uid is not None and pending.uids is not None and uid in pending.uids:
                return pending
        return running[0] if running else None

    def _dispatch(self, event: object) -> None:
        if isinstance(event, CommandDone):
            self._on_done(event)
            return
        if isinstance(event, (BodyChunk, FetchStart, FetchEnd)):
            self._on_body_part(event)
            return
        if isinstance(event, ContinuationRequest):
            for pending in self._pending.values():
                if isinstance(pending.command, (c.Authenticate, c.Idle)):
                    pending.continuations.append(event)
            return
        if isinstance(event, ConnectionClosed):
            raise ConnectionLost(f"{self.endpoint.host} closed the connection")
        self._on_response(cast(Response, event))

    def _on_body_part(self, event: BodyChunk | FetchStart | FetchEnd) -> None:
        """A part of a FETCH response with a body literal: its FetchStart picks the streaming
        fetch, and the chunks and the FetchEnd follow it there."""
        if isinstance(event, FetchStart) and self._streaming is None:
            self._streaming = self._fetch_target(event.fetch.uid)
        target = self._streaming
        if isinstance(event, FetchEnd):
            self._streaming = None
        if target is not None and target.items is not None:
            # A memoryview may point into the framer's buffer: keep our own bytes.
            target.items.append(bytes(event.data) if isinstance(event, BodyChunk) else event)

    def _on_done(self, event: CommandDone) -> None:
        pending = self._pending.get(event.tag)
        if pending is None:  # pragma: no cover - ClientConnection checks tags
            raise RemoteProtocolError(f"completion for an unknown tag {event.tag!r}")
        pending.done = event
        if event.status is Status.BAD:
            self._consecutive_bad += 1
        else:
            self._consecutive_bad = 0

    def _on_response(self, response: Response) -> None:
        """An untagged response: a streaming FETCH's message, a BYE, or data for every
        command in flight."""
        if isinstance(response, FetchResponse) and response.uid is not None:
            target = self._fetch_target(response.uid)
            if target is not None and target.items is not None:
                target.items.append(response)
                return
        if isinstance(response, StatusResponse) and response.status is Status.BYE:
            if not any(isinstance(p.command, c.Logout) for p in self._pending.values()):
                # The server is ending the session: fail now rather than wait for the close.
                raise connection_lost_for(response)
            return
        if isinstance(response, ExistsResponse):
            self._exists = response.count
        size = _footprint(response)
        for pending in self._pending.values():
            pending.untagged.append(response)
            pending.untagged_bytes += size
            self._check_limits(pending)

    def _check_limits(self, pending: _Pending) -> None:
        """Raise RemoteProtocolError once a command buffered more than the limits allow."""
        limits = self.endpoint.limits
        most = limits.responses + 2 * self._exists
        what = type(pending.command).__name__.upper()
        if len(pending.untagged) > most:
            raise RemoteProtocolError(
                f"the server sent more than {most} responses to one {what} command "
                f"(the folder holds {self._exists} messages); the connection was dropped"
            )
        most_bytes = limits.bytes + limits.bytes_per_message * self._exists
        if pending.untagged_bytes > most_bytes:
            raise RemoteProtocolError(
                f"the responses to one {what} command passed {most_bytes >> 20} MB "
                f"(the folder holds {self._exists} messages); the connection was dropped"
            )

    # --- closing --------------------------------------------------------------------------

    async def logout(self) -> None:
        """LOGOUT politely (best effort) and close."""
        if self._error is None and not self.transport.closed:
            try:
                async with asyncio.timeout(5):
                    tag = await self.send_paced(c.Logout())
                    await self.wait(tag)
            except (ConnectionLost, TimeoutError, RemoteProtocolError, LocalProtocolError):
                pass
            except SessionInvalidated:
                pass
        await self.close()

    async def close(self) -> None:
        if self._error is None:
            self._error = ConnectionLost("the session was closed")
            self._event("disconnect", detail="closed")
        await self.transport.close()

    @property
    def busy(self) -> bool:
        """Whether a streaming FETCH on this session has not completed yet."""
        return any(p.items is not None for p in self._pending.values())

    @property
    def alive(self) -> bool:
        """False once the session failed or was closed. A server's close alone does not
        count until the data received before it has been read."""
        return self._error is None


#: What a parsed response costs in memory beyond its data (objects, tuples, small strings).
_RESPONSE_OVERHEAD = 400


def _footprint(response: Response) -> int:
    """An estimate of the memory ``response`` takes: its body data, its numbers, its text."""
    size = _RESPONSE_OVERHEAD
    if isinstance(response, FetchResponse):
        size += sum(len(body.data) for body in response.bodies if body.data is not None)
    elif isinstance(response, SearchResponse):
        size += 40 * len(response.numbers)
    elif isinstance(response, StatusResponse):
        size += len(response.text)
    return size
