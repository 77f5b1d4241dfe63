"""One client's session through the proxy: sign-in, then both sides of the protocol core.

Before sign-in the proxy itself answers (CAPABILITY, NOOP, LOGOUT, LOGIN, AUTHENTICATE
PLAIN). After it, each client command is parsed by the server side of the core
(:class:`~exoimap.protocol.server.ServerConnection`), sent upstream under the upstream's
own tag by the client side (:class:`~exoimap.protocol.client.ClientConnection`), and the
answer is given back under the client's tag. Message bodies pass through as chunks in both
directions (a FETCH body as it arrives, an APPEND as the client sends it): nothing holds a
whole message. CAPABILITY lists are rewritten (:mod:`.capabilities`); IDLE passes through.

Healing: when Exchange ends the session with ``* BYE Session invalidated -
AccessTokenExpired`` (it does so instead of running the next command), the proxy signs in
again with a newly issued token, selects the mailbox the client had selected and sends the
unanswered commands again; the client sees a short delay. A session that cannot be healed
(an APPEND half sent, a mailbox that is gone) ends with a ``BYE`` saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from dataclasses import dataclass, field, replace

from exoimap import audit
from exoimap.errors import ConnectionLost, ExoimapError, LocalProtocolError, RemoteProtocolError
from exoimap.logs import redact
from exoimap.net.session import ImapSession
from exoimap.protocol import commands as c
from exoimap.protocol import sasl
from exoimap.protocol.answers import session_invalidated_reason, throttle_backoff
from exoimap.protocol.client import ClientConnection
from exoimap.protocol.events import (
    NEED_DATA,
    AppendChunk,
    AppendEnd,
    AppendStart,
    AuthenticateData,
    BadCommand,
    BodyChunk,
    CommandDone,
    CommandReceived,
    ConnectionClosed,
    FetchEnd,
    FetchStart,
    IdleDone,
)
from exoimap.protocol.server import ServerConnection
from exoimap.protocol.types import (
    CapabilityCode,
    CapabilityResponse,
    ContinuationRequest,
    FetchResponse,
    Response,
    ResponseCode,
    SimpleCode,
    Status,
    StatusResponse,
)
from exoimap.proxy.capabilities import BEFORE_LOGIN, BEFORE_STARTTLS, for_client, rewritten
from exoimap.proxy.gate import Admitted, Gate, Refused
from exoimap.proxy.meter import command_name
from exoimap.proxy.upstream import Upstreams
from exoimap.secrets import Secret
from exoimap.untrusted import shown

__all__ = ["ClientSession", "GREETING"]

log = logging.getLogger(__name__)

GREETING = "exoimap proxy ready."
_READ = 256 << 10
#: Zeros fed to the client side of the core for an APPEND refused before its message.
_DISCARD_CHUNK = 1 << 20
#: A throttled command is sent again at most this often before its NO goes to the client.
_THROTTLE_TRIES = 5
_RESEND_POLL = 0.2


@dataclass
class _Relay:
    """The state shared by the two directions of one signed-in session."""

    up: ImapSession
    #: upstream tag -> the client's tag for the same command
    tags: dict[str, str] = field(default_factory=dict)
    #: the mailbox the client has selected (name, read-only), re-selected after healing
    selected: tuple[str, bool] | None = None
    #: the FETCH whose body is being streamed to the client
    streaming: FetchStart | None = None
    #: the client's APPEND tag waiting for the upstream's go-ahead
    append_waiting: str | None = None
    #: the client's IDLE tag, and whether its DONE went upstream
    idle_tag: str | None = None
    idle_done: bool = False
    #: after healing, the re-sent IDLE's "+" is not shown again
    swallow_continuation: bool = False
    #: Exchange said the token expired: heal instead of closing
    token_expired: bool = False
    #: loop time before which Exchange asked not to be asked again (throttling)
    throttled_until: float = 0.0


class ClientSession:
    """Serves one accepted client connection until either side ends it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        gate: Gate,
        upstreams: Upstreams,
        *,
        preauth_timeout: float = 60.0,
        starttls: ssl.SSLContext | None = None,
    ) -> None:
        self._preauth_timeout = preauth_timeout
        #: On a STARTTLS port: the context to upgrade with; None once TLS is on (or never).
        self._starttls = starttls
        self._reader = reader
        self._writer = writer
        self._gate = gate
        self._upstreams = upstreams
        peer = writer.get_extra_info("peername")
        self.source = str(peer[0]) if isinstance(peer, tuple) else "local"
        self.connection_id = secrets.token_hex(6)
        self._server = ServerConnection()
        self._admitted: Admitted | None = None
        self._relay: _Relay | None = None
        self._ready = asyncio.Event()  # set while an upstream session is usable
        self.heals = 0
        self.renewals = 0
        self._throttle_tries: dict[str, int] = {}
        self._meter = upstreams.meter
        # The added latency of each relayed command: when the client's bytes were read, the
        # commands they held (client tag, name) not yet written upstream, the proxy's time
        # so far on each command in flight, and the commands answered in this upstream read.
        self._read_at = time.perf_counter()
        self._unsent: list[tuple[str, str]] = []
        self._inbound: dict[str, tuple[str, float]] = {}
        self._answered: list[tuple[str, float]] = []

    # --- plumbing -------------------------------------------------------------------------

    async def _flush_client(self) -> None:
        pieces = self._server.pieces_to_send()
        if pieces:
            self._writer.writelines(pieces)
            await self._writer.drain()

    def _flush_upstream(self) -> None:
        relay = self._relay
        if relay is None:
            return
        pieces = relay.up.conn.pieces_to_send()
        if not pieces:
            return
        with contextlib.suppress(ConnectionLost):  # the upstream's end is noticed by its reader
            relay.up.transport.write(b"".join(pieces))

    def _say(
        self, tag: str | None, status: Status, text: str, code: ResponseCode | None = None
    ) -> None:
        self._server.send(StatusResponse(tag, status, code, text))

    async def _read_client(self) -> bytes:
        try:
            data = await self._reader.read(_READ)
        except (ConnectionError, OSError):
            return b""
        self._read_at = time.perf_counter()
        return data

    def _count(self, event: object) -> None:
        """Count a command the client sent (its name only: the label set is fixed)."""
        if isinstance(event, CommandReceived):
            self._meter.command(command_name(event.command))
        elif isinstance(event, AppendStart):
            self._meter.command("APPEND")
        elif isinstance(event, BadCommand):
            self._meter.command("other")

    def _written_upstream(self) -> None:
        """The commands of the last client read are on their way upstream: note the
        proxy's time on them so far."""
        took = time.perf_counter() - self._read_at
        for tag, name in self._unsent:
            self._inbound[tag] = (name, took)
        self._unsent.clear()

    def _written_to_client(self, read_at: float) -> None:
        """The answers of the last upstream read reached the client: each answered
        command's added latency is its time in the proxy both ways."""
        took = time.perf_counter() - read_at
        for name, inbound in self._answered:
            self._meter.added_latency(name, inbound + took)
        self._answered.clear()

    # --- the session ----------------------------------------------------------------------

    async def serve(self) -> None:
        audit.emit(
            audit.ImapConnected(host=f"client {self.source}", port=0, connection=self.connection_id)
        )
        reason = "client closed"
        try:
            self._server.send(
                StatusResponse(None, Status.OK, CapabilityCode(self._before_login_caps), GREETING)
            )
            await self._flush_client()
            try:
                async with asyncio.timeout(self._preauth_timeout):
                    signed_in = await self._sign_in()
            except TimeoutError:
                reason = "not signed in in time"
                self._say(None, Status.BYE, "Autologout: not signed in in time.")
                return
            if signed_in:
                reason = await self._run_relay()
        except RemoteProtocolError as exc:
            reason = f"client protocol error: {exc}"
        except (ConnectionError, OSError) as exc:
            reason = f"client connection lost: {type(exc).__name__}"
        finally:
            await self._close(reason)

    async def _close(self, reason: str) -> None:
        # Recorded before the client sees the connection end, so the record is there by then.
        account = self._admitted.account.name if self._admitted else None
        if self._admitted is not None:
            self._upstreams.release(self._admitted.account)
        audit.emit(
            audit.ImapClosed(
                account=account,
                host=f"client {self.source}",
                reason=reason,
                connection=self.connection_id,
            )
        )
        relay, self._relay = self._relay, None
        if relay is not None:
            with contextlib.suppress(ExoimapError, OSError):
                await self._upstreams.close(relay.up, logout=True)
        with contextlib.suppress(ConnectionError, OSError, LocalProtocolError):
            await self._flush_client()  # a BYE saying why
            self._writer.close()
            await self._writer.wait_closed()

    # --- before sign-in -------------------------------------------------------------------

    async def _sign_in(self) -> bool:
        """The dialogue before sign-in; True once the client is in and upstream is open."""
        while True:
            event = self._server.next_event()
            if event is NEED_DATA:
                self._server.receive_data(await self._read_client())
                continue
            if isinstance(event, ConnectionClosed):
                return False
            self._count(event)
            done = await self._before_login(event)
            await self._flush_client()
            if done is not None:
                return done

    @property
    def _before_login_caps(self) -> tuple[str, ...]:
        return BEFORE_STARTTLS if self._starttls is not None else BEFORE_LOGIN

    async def _start_tls(self, tag: str) -> None:
        """Answer OK, then upgrade the connection; anything the client sent after the
        command in the clear is discarded with the old parser (RFC 3501 6.2.1)."""
        context, self._starttls = self._starttls, None
        if context is None:
            self._say(tag, Status.BAD, "TLS is already active.")
            return
        self._say(tag, Status.OK, "Begin TLS negotiation now.")
        await self._flush_client()
        await self._writer.start_tls(context)
        self._server = ServerConnection()

    async def _before_login(self, event: object) -> bool | None:
        if isinstance(event, BadCommand):
            self._say(event.tag, Status.BAD, "Command Error. 12")
            return None
        if isinstance(event, AuthenticateData):
            return await self._plain(event.tag, event.data)
        if not isinstance(event, CommandReceived):
            raise RemoteProtocolError("unexpected data before sign-in")
        tag, command = event.tag, event.command
        if isinstance(command, c.StartTls):
            await self._start_tls(tag)
        elif isinstance(command, c.Login | c.Authenticate):
            return await self._credentials(tag, command)
        elif isinstance(command, c.Capability):
            self._server.send(CapabilityResponse(self._before_login_caps))
            self._say(tag, Status.OK, "CAPABILITY completed.")
        elif isinstance(command, c.Noop | c.Id):
            self._say(tag, Status.OK, f"{type(command).__name__.upper()} completed.")
        elif isinstance(command, c.Logout):
            self._say(None, Status.BYE, "exoimap proxy logging out.")
            self._say(tag, Status.OK, "LOGOUT completed.")
            return False
        else:
            self._say(tag, Status.BAD, "Command received in Invalid state.")
        return None

    async def _credentials(self, tag: str, command: c.Login | c.Authenticate) -> bool | None:
        if self._starttls is not None:
            self._say(
                tag, Status.NO, "Use STARTTLS before signing in.", SimpleCode("PRIVACYREQUIRED")
            )
        elif isinstance(command, c.Login):
            return await self._admit(tag, command.username, command.password, "LOGIN")
        elif command.mechanism != "PLAIN":
            self._say(tag, Status.NO, "Only AUTH=PLAIN with an app password is offered.")
        elif command.initial_response is None:
            self._server.send(ContinuationRequest(""))
        else:
            return await self._plain(tag, command.initial_response)
        return None

    async def _plain(self, tag: str, data: Secret[bytes] | None) -> bool | None:
        if data is None:
            self._say(tag, Status.BAD, "AUTHENTICATE cancelled.")
            return None
        try:
            message = sasl.parse_plain(data.reveal())
        except RemoteProtocolError:
            self._say(tag, Status.BAD, "A malformed PLAIN message.")
            return None
        return await self._admit(tag, message.user, message.password, "PLAIN")

    async def _admit(
        self, tag: str, username: str, password: Secret[str], mechanism: str
    ) -> bool | None:
        verdict = await self._gate.check(self.source, username, password.reveal())
        if isinstance(verdict, Refused):
            self._say(tag, Status.NO, verdict.text, SimpleCode(verdict.code))
            return None
        if not self._upstreams.claim(verdict.account):
            limit = self._upstreams.max_sessions
            self._say(
                tag,
                Status.NO,
                f"This mailbox has {limit} proxy connections open, the most allowed; "
                "close another client's connection and try again.",
                SimpleCode("LIMIT"),
            )
            return None
        try:
            session = await self._upstreams.open(verdict.account)
        except BaseException as exc:
            self._upstreams.release(verdict.account)
            if not isinstance(exc, ExoimapError):
                raise
            log.warning("upstream sign-in for %s failed: %s", verdict.account.name, exc)
            self._say(
                tag,
                Status.NO,
                f"The mailbox cannot be opened now: {shown(redact(str(exc)))[:300]}",
                SimpleCode("UNAVAILABLE"),
            )
            return None
        self._admitted = verdict
        self._relay = _Relay(session)
        self._ready.set()
        audit.emit(
            audit.ImapAuthenticated(
                account=verdict.account.name,
                host=f"client {self.source}",
                mechanism=mechanism,
                username=verdict.password.label,
                connection=self.connection_id,
            )
        )
        caps = CapabilityCode(for_client(session.capabilities))
        self._say(tag, Status.OK, f"{mechanism} completed.", caps)
        return True

    # --- relaying -------------------------------------------------------------------------

    async def _run_relay(self) -> str:
        to_upstream = asyncio.create_task(self._client_to_upstream())
        to_client = asyncio.create_task(self._upstream_to_client())
        try:
            done, _ = await asyncio.wait(
                (to_upstream, to_client), return_when=asyncio.FIRST_COMPLETED
            )
        finally:  # one direction ended, or the proxy is stopping: end the other
            for task in (to_upstream, to_client):
                task.cancel()
            for task in (to_upstream, to_client):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return str(next(iter(done)).result())

    async def _client_to_upstream(self) -> str:
        server = self._server
        while True:
            event = server.next_event()
            if event is NEED_DATA:
                # Everything the last read held is forwarded: write it out in one go.
                await self._flush_upstream_and_wait()
                self._written_upstream()
                await self._flush_client()
                data = await self._read_client()
                self._meter.relayed("imap", "to_upstream", len(data))
                server.receive_data(data)
                continue
            if isinstance(event, ConnectionClosed):
                return "client closed"
            self._count(event)
            await self._ready.wait()
            if isinstance(event, CommandReceived) and self._renewal_due(self._current()):
                await self._renew(self._current())
            self._forward(event)
            relay = self._relay
            if relay is not None and relay.up.conn.literal_held:
                # The upstream has not said "+" to the APPEND yet: stop reading the client.
                await self._flush_upstream_and_wait()
                while self._relay is not None and self._relay.up.conn.literal_held:
                    self._ready.clear()
                    await self._ready.wait()

    async def _flush_upstream_and_wait(self) -> None:
        """Write what is queued for the upstream; wait while its socket is full."""
        self._flush_upstream()
        if self._relay is not None:
            with contextlib.suppress(ConnectionLost):  # noticed by the upstream's reader
                await self._relay.up.transport.drain()

    def _current(self) -> _Relay:
        relay = self._relay
        assert relay is not None
        return relay

    def _forward(self, event: object) -> None:
        relay = self._relay
        assert relay is not None
        conn = relay.up.conn
        if isinstance(event, CommandReceived):
            self._forward_command(relay, event.tag, event.command)
        elif isinstance(event, AppendStart):
            command = event.command
            tag = conn.send(
                c.Append(command.mailbox, None, command.flags, command.date, command.size)
            )
            relay.tags[tag] = event.tag
            self._unsent.append((event.tag, "APPEND"))
            if event.synchronizing:
                relay.append_waiting = event.tag
                # Written now, so that a synchronising literal upstream shows as held and
                # the client hears "+" only once the upstream has said it.
                self._flush_upstream()
                self._append_go_ahead(relay)
        elif isinstance(event, AppendChunk):
            conn.send_literal_data(bytes(event.data))
        elif isinstance(event, AppendEnd):
            pass  # the client side of the core ends the literal itself
        elif isinstance(event, IdleDone):
            relay.idle_done = True
            conn.send(c.Done())
        elif isinstance(event, BadCommand):
            self._say(event.tag, Status.BAD, "Command Error. 12")
        elif isinstance(event, AuthenticateData):
            self._say(event.tag, Status.BAD, "Command received in Invalid state.")

    def _forward_command(self, relay: _Relay, tag: str, command: c.Command) -> None:
        if isinstance(command, c.Capability):
            self._server.send(CapabilityResponse(for_client(relay.up.capabilities)))
            self._say(tag, Status.OK, "CAPABILITY completed.")
            return
        if isinstance(command, c.Login | c.Authenticate):
            self._say(tag, Status.BAD, "Command received in Invalid state.")
            return
        if isinstance(command, c.Idle):
            relay.idle_tag, relay.idle_done = tag, False
        relay.tags[relay.up.conn.send(command)] = tag
        self._unsent.append((tag, command_name(command)))

    def _append_go_ahead(self, relay: _Relay) -> None:
        """Tell the client to send its APPEND message once the upstream takes it."""
        if relay.append_waiting is not None and not relay.up.conn.literal_held:
            relay.append_waiting = None
            self._server.send(ContinuationRequest("Ready for append literal data."))

    async def _upstream_to_client(self) -> str:
        while True:
            relay = self._relay
            assert relay is not None
            try:
                data = await relay.up.transport.read()
            except ConnectionLost:
                data = b""
            read_at = time.perf_counter()
            self._meter.relayed("imap", "to_client", len(data))
            if relay is not self._relay:
                continue  # renewed meanwhile: the old session is logging out
            relay.up.conn.receive_data(data)
            try:
                ended = self._relay_events(relay)
            except (RemoteProtocolError, LocalProtocolError) as exc:
                log.warning("upstream protocol error: %s", exc)
                return self._end(f"the upstream session failed: {exc}")
            self._flush_upstream()
            self._append_go_ahead(relay)
            self._ready.set()
            await self._flush_client()
            self._written_to_client(read_at)
            renewable = relay.token_expired or relay.throttled_until > 0
            healed = ended and renewable and await self._heal(relay)
            if ended and not healed:
                return self._end("the upstream session ended")

    def _end(self, reason: str) -> str:
        self._say(None, Status.BYE, f"exoimap proxy: {reason}.")
        return reason

    def _relay_events(self, relay: _Relay) -> bool:
        """Pass on what the upstream sent; True when the upstream connection ended."""
        conn = relay.up.conn
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return False
            if isinstance(event, ConnectionClosed):
                return True
            if isinstance(event, CommandDone):
                self._done(relay, event)
            elif isinstance(event, FetchStart | BodyChunk | FetchEnd):
                self._stream(relay, event)
            else:
                self._untagged(relay, event)  # type: ignore[arg-type]

    def _untagged(self, relay: _Relay, response: Response) -> None:
        if isinstance(response, StatusResponse) and response.status is Status.BYE:
            if session_invalidated_reason(response) == "AccessTokenExpired":
                relay.token_expired = True
            if relay.token_expired or relay.throttled_until > 0:
                return  # the session is renewed, the client is not told
        if isinstance(response, ContinuationRequest) and relay.swallow_continuation:
            relay.swallow_continuation = False
            return
        self._server.send(rewritten(response))

    def _done(self, relay: _Relay, event: CommandDone) -> None:
        client_tag = relay.tags.pop(event.tag, None)
        if client_tag is None:
            return  # one of the proxy's own commands
        command = event.command
        if self._retry_throttled(relay, client_tag, command, event.response):
            return
        timing = self._inbound.pop(client_tag, None)
        if timing is not None:
            self._answered.append(timing)
        if event.ok and isinstance(command, c.Select | c.Examine):
            relay.selected = (command.mailbox, isinstance(command, c.Examine))
        elif isinstance(command, c.Select | c.Examine | c.Close | c.Unselect):
            relay.selected = None
        if isinstance(command, c.Idle):
            relay.idle_tag, relay.idle_done = None, False
        if relay.append_waiting == client_tag:
            relay.append_waiting = None
            _discard_append(relay.up.conn, command)
        self._server.send(rewritten(replace(event.response, tag=client_tag)))

    def _retry_throttled(
        self, relay: _Relay, client_tag: str, command: c.Command, response: StatusResponse
    ) -> bool:
        """A throttled command is sent again after the backoff Exchange suggests, when that
        is short enough for a client to wait: the client sees a delay, not an error."""
        backoff = throttle_backoff(response)
        if backoff is None or not _repeatable(command):
            return False
        tries = self._throttle_tries.get(client_tag, 0)
        if backoff > self._upstreams.max_throttle_wait or tries >= _THROTTLE_TRIES:
            return False
        self._throttle_tries[client_tag] = tries + 1
        self._meter.throttle_retry()
        loop = asyncio.get_running_loop()
        relay.throttled_until = loop.time() + backoff
        assert self._admitted is not None
        audit.emit(
            audit.ImapThrottled(
                account=self._admitted.account.name,
                host=relay.up.endpoint.host,
                wait_s=backoff,
                reason=f"held for proxy client {self.source}: {response.text}",
            )
        )
        loop.call_later(backoff, self._send_again, client_tag, command)
        return True

    def _send_again(self, client_tag: str, command: c.Command) -> None:
        relay = self._relay
        if relay is None or not self._ready.is_set():
            # renewing the session: try once it is back
            asyncio.get_running_loop().call_later(
                _RESEND_POLL, self._send_again, client_tag, command
            )
            return
        try:
            relay.tags[relay.up.conn.send(command)] = client_tag
        except LocalProtocolError:  # an APPEND or IDLE is in progress on it: a bit later
            asyncio.get_running_loop().call_later(
                _RESEND_POLL, self._send_again, client_tag, command
            )
            return
        self._flush_upstream()

    def _stream(self, relay: _Relay, event: FetchStart | BodyChunk | FetchEnd) -> None:
        server = self._server
        if isinstance(event, FetchStart):
            size = event.body.size or 0
            previous, relay.streaming = relay.streaming, event
            if previous is None:
                server.send_fetch_start(event.fetch, event.body, size)
            else:  # another large body of the same response: what came between, then it
                server.send_fetch_next(_after_body(previous, event.fetch), event.body, size)
        elif isinstance(event, BodyChunk):
            server.send_body_data(bytes(event.data))
        else:
            start, relay.streaming = relay.streaming, None
            assert start is not None
            server.send_fetch_end(_after_body(start, event.fetch))

    # --- healing --------------------------------------------------------------------------

    async def _heal(self, old: _Relay) -> bool:
        """Replace the expired upstream session; False when the session cannot go on."""
        self._ready.clear()
        unanswered = list(old.up.conn.in_flight.items())
        if any(isinstance(cmd, c.Append) and cmd.message is None for _, cmd in unanswered):
            return False  # the message is gone by now
        await self._upstreams.close(old.up)
        wait = old.throttled_until - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)  # Exchange closed a throttled session: wait as asked
        relay = await self._reopen(old, fresh_token=old.token_expired)
        if relay is None:
            return False
        for up_tag, command in unanswered:
            client_tag = old.tags.get(up_tag)
            if client_tag is None:
                continue
            if isinstance(command, c.Idle) and old.idle_done:
                self._say(client_tag, Status.OK, "IDLE completed.")
                relay.idle_tag = None
                continue
            relay.tags[relay.up.conn.send(command)] = client_tag
            if isinstance(command, c.Idle):
                relay.swallow_continuation = True
        self._relay = relay
        self.heals += 1
        self._meter.session_healed("token_expired" if old.token_expired else "throttled")
        self._flush_upstream()
        self._ready.set()
        log.info("upstream session renewed after Exchange ended it")
        return True

    async def _reopen(self, old: _Relay, *, fresh_token: bool) -> _Relay | None:
        """A new upstream session in the state ``old`` left: signed in, mailbox selected."""
        assert self._admitted is not None
        session = None
        try:
            session = await self._upstreams.open(self._admitted.account, fresh_token=fresh_token)
            if old.selected is not None:
                name, read_only = old.selected
                reply = await session.command(c.Examine(name) if read_only else c.Select(name))
                if not reply.ok:
                    await self._upstreams.close(session)
                    return None
        except ExoimapError as exc:
            log.warning("renewing the upstream session failed: %s", exc)
            if session is not None:  # signed in, but the mailbox could not be selected
                await self._upstreams.close(session)
            return None
        return _Relay(session, selected=old.selected, idle_tag=old.idle_tag)

    def _renewal_due(self, relay: _Relay) -> bool:
        """Whether the upstream token ends soon and nothing is in flight to lose."""
        expires = relay.up.token_expires_at
        return (
            expires is not None
            and not relay.up.conn.in_flight
            and relay.streaming is None
            and self._upstreams.clock() >= expires - self._upstreams.refresh_margin
        )

    async def _renew(self, old: _Relay) -> None:
        """Between commands, move to a new upstream session before the token expires; the
        old one logs out (its reader sees it retired and turns to the new one)."""
        self._ready.clear()
        relay = await self._reopen(old, fresh_token=False)
        if relay is None:
            self._ready.set()  # go on with the old session; Exchange's BYE will be healed
            return
        self._relay = relay
        self.renewals += 1
        self._meter.session_healed("renewed")
        with contextlib.suppress(ConnectionLost, LocalProtocolError):
            old.up.send(c.Logout())
        await self._upstreams.close(old.up)
        self._ready.set()
        log.info("upstream session renewed before the access token expires")


def _repeatable(command: c.Command) -> bool:
    """Whether the proxy can send ``command`` again by itself (a streamed APPEND's message
    has passed through and is gone; IDLE and LOGOUT are the client's to repeat)."""
    if isinstance(command, c.Append):
        return command.message is not None
    return not isinstance(command, c.Idle | c.Logout)


def _discard_append(conn: ClientConnection, command: c.Command) -> None:
    """The upstream refused an APPEND before its message: let the client side of the core
    drop the bytes it still expects (the client was never told to send them)."""
    if not isinstance(command, c.Append) or command.size is None:
        return
    left = command.size
    with contextlib.suppress(LocalProtocolError):
        while left > 0:
            step = min(left, _DISCARD_CHUNK)
            conn.send_literal_data(bytes(step))
            left -= step


def _after_body(start: FetchStart, end: FetchResponse) -> FetchResponse:
    """The items of ``end`` that came after the streamed body of ``start`` (those before
    were sent); ``end`` is the whole response or the part before the next streamed body."""
    before = start.fetch
    trailing = FetchResponse(
        seq=end.seq,
        uid=end.uid if before.uid is None else None,
        flags=end.flags if before.flags is None else None,
        internal_date=end.internal_date if before.internal_date is None else None,
        rfc822_size=end.rfc822_size if before.rfc822_size is None else None,
        modseq=end.modseq if before.modseq is None else None,
        envelope=end.envelope if before.envelope is None else None,
        body_structure=end.body_structure if before.body_structure is None else None,
        bodies=end.bodies[len(before.bodies) + 1 :],
        extra=end.extra[len(before.extra) :],
    )
    return trailing
