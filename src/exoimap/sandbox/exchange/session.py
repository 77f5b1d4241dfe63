"""One client connection to the sandbox Exchange IMAP server.

The session reads bytes, feeds :class:`~exoimap.protocol.ServerConnection`, answers its
events with Exchange's exact texts (:mod:`.texts`) and writes the bytes out, through the
fault injector. It owns the connection's state (not authenticated, authenticated,
selected, "authenticated but not connected"), its counters (bad commands, failed sign-ins),
its view of the selected folder and the APPEND in progress; mailbox commands, and what
APPEND does to the mailbox, live in :mod:`.handlers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from exoimap.errors import ExoimapError, RemoteProtocolError
from exoimap.protocol import commands as c
from exoimap.protocol.events import (
    AppendChunk,
    AppendEnd,
    AppendStart,
    AuthenticateData,
    BadCommand,
    CommandReceived,
    ConnectionClosed,
    IdleDone,
    NeedData,
)
from exoimap.protocol.server import ServerConnection
from exoimap.protocol.types import (
    ContinuationRequest,
    Response,
    ResponseCode,
    Status,
    StatusResponse,
)
from exoimap.sandbox.exchange import handlers, texts
from exoimap.sandbox.exchange.app_requests import AppRequests
from exoimap.sandbox.exchange.auth import AuthDecision, Authorizer, Cause, IdentityView
from exoimap.sandbox.exchange.config import AuthOutcome, ExchangeSettings
from exoimap.sandbox.exchange.mailboxes import Mailbox, Mailboxes
from exoimap.sandbox.faults import Faults
from exoimap.store.memory import StoreEvent

__all__ = ["Session", "SessionServer", "SessionState"]

log = logging.getLogger("exoimap.sandbox.exchange")

_KNOWN_COMMANDS = {
    b"CAPABILITY", b"NOOP", b"LOGOUT", b"AUTHENTICATE", b"LOGIN", b"SELECT", b"EXAMINE",
    b"CREATE", b"DELETE", b"RENAME", b"SUBSCRIBE", b"UNSUBSCRIBE", b"LIST", b"LSUB",
    b"STATUS", b"APPEND", b"CHECK", b"CLOSE", b"EXPUNGE", b"SEARCH", b"FETCH", b"STORE",
    b"COPY", b"MOVE", b"UID", b"IDLE", b"NAMESPACE", b"ID", b"UNSELECT", b"ENABLE",
}  # fmt: skip

# Commands by the states they are valid in.
_ANY_STATE = (c.Capability, c.Noop, c.Logout, c.Id)
_NOT_AUTHENTICATED = (c.Authenticate, c.Login)
_AUTHENTICATED = (
    c.Namespace, c.Select, c.Examine, c.Create, c.Delete, c.Rename, c.Subscribe,
    c.Unsubscribe, c.List, c.Lsub, c.StatusCommand, c.Idle,
)  # fmt: skip
_SELECTED = (
    c.Close, c.Unselect, c.Expunge, c.UidExpunge, c.Fetch, c.Search, c.StoreFlags, c.Copy, c.Move,
)  # fmt: skip


# Events answered between writes while a pipelined batch is worked through.
_FLUSH_EVERY = 64


def _coalesce(pieces: list[bytes], limit: int = 256 * 1024) -> list[bytes]:
    """Join runs of small pieces (each TLS write costs a record or more); big bodies stay
    separate so they are not copied."""
    out: list[bytes] = []
    run: list[bytes] = []
    run_size = 0
    for piece in pieces:
        if len(piece) >= limit:
            if run:
                out.append(b"".join(run))
                run, run_size = [], 0
            out.append(piece)
            continue
        run.append(piece)
        run_size += len(piece)
        if run_size >= limit:
            out.append(b"".join(run))
            run, run_size = [], 0
    if run:
        out.append(b"".join(run))
    return out


class SessionState(enum.Enum):
    NOT_AUTHENTICATED = "not-authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    NOT_CONNECTED = "authenticated-but-not-connected"
    LOGOUT = "logout"


class SessionServer(Protocol):
    """What a session uses of the server that accepted it (``ExchangeImapServer``).

    Defined here, not imported from the server's module, so that the server may import
    the session without a cycle.
    """

    @property
    def settings(self) -> ExchangeSettings: ...

    @property
    def faults(self) -> Faults: ...

    @property
    def identity(self) -> IdentityView: ...

    @property
    def authorizer(self) -> Authorizer: ...

    @property
    def mailboxes(self) -> Mailboxes: ...

    @property
    def app_requests(self) -> AppRequests: ...


class Session:
    """State and I/O of one connection (see the module docstring)."""

    def __init__(
        self,
        server: SessionServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.settings = server.settings
        self.reader = reader
        self.writer = writer
        self.conn = ServerConnection(
            max_line_length=max(self.settings.max_command_size, 1024),
            # any announced size gets an answer (NO for a message over the limit); only
            # APPEND literals can be this big, and they stream (bounded memory)
            max_literal_size=1 << 40,
            literal_continuation=ContinuationRequest(texts.LITERAL_CONTINUATION),
        )
        self.state = SessionState.NOT_AUTHENTICATED
        self.mailbox: Mailbox | None = None
        self.expires_at: float | None = None
        #: The application signed in app-only (its commands count against its budget).
        self.app: str | None = None
        #: When each command before the sign-in arrived (``time.monotonic()``): they count
        #: for the app that signs in [U], at the times they came.
        self._before_signin: list[float] = []
        self.bad_commands = 0
        self.auth_failures = 0
        self.closing = False
        self.sent_bytes = 0
        # bytes queued outside the protocol core's buffer (FETCH bodies), in order
        self.pending: list[bytes] = []
        self.pending_size = 0
        # selected folder view
        self.selected: str | None = None
        self.readonly = False
        self.uidvalidity = 0
        self.known: list[int] = []
        self.known_flags: dict[int, frozenset[str]] = {}
        self.dirty = False
        self.invalidated = False
        self.changed = asyncio.Event()
        self._remove_listener: object = None
        # AUTHENTICATE / IDLE / APPEND in progress
        self.auth_tag: str | None = None
        self.auth_mechanism = ""
        self.idle_tag: str | None = None
        self.append: tuple[str, c.Append] | None = None
        # the message's pieces as they arrive, joined once at its end
        self.append_chunks: list[bytes | memoryview] = []
        # why the APPEND in progress is refused (its message is read and dropped)
        self.append_refusal: handlers.AppendRefusal | None = None
        self._read_task: asyncio.Task[bytes] | None = None
        self._clock: float | None = None  # see now()

    # --- output -------------------------------------------------------------------------

    def send(self, response: Response) -> None:
        self.conn.send(response)

    def raw(self, data: bytes) -> None:
        self.conn.send_raw(data)

    def untagged(self, text: str) -> None:
        self.conn.send_raw(b"* " + text.encode("utf-8") + b"\r\n")

    def tagged(self, tag: str, status: Status, text: str, code: ResponseCode | None = None) -> None:
        self.conn.send(StatusResponse(tag, status, code, text))

    def ok(self, tag: str, command: str, code: ResponseCode | None = None) -> None:
        self.tagged(tag, Status.OK, texts.completed(command), code)

    def raw_pieces(self, pieces: list[bytes]) -> None:
        """Queue bytes (big message bodies) without copying them into one buffer."""
        queued = self.conn.data_to_send()
        if queued:
            self.pending.append(queued)
            self.pending_size += len(queued)
        self.pending += pieces
        self.pending_size += sum(len(p) for p in pieces)

    async def flush(self) -> None:
        pieces = self.pending
        tail = self.conn.data_to_send()
        if tail:
            pieces.append(tail)
        size = self.pending_size + len(tail)
        self.pending, self.pending_size = [], 0
        if not size:
            return
        await self.server.faults.before_write(self.mailbox.upn if self.mailbox else None)
        allowed = self.server.faults.allowed_bytes(self.sent_bytes, size)
        if allowed < size:
            self.writer.write(b"".join(pieces)[:allowed])
            self.sent_bytes += allowed
            self.writer.transport.abort()
            self.closing = True
            return
        self.writer.writelines(_coalesce(pieces))
        self.sent_bytes += size
        await self.writer.drain()

    def close_with(self, text: str) -> None:
        """``* BYE <text>`` and end the session after the flush."""
        self.untagged("BYE " + text)
        self.closing = True

    def now(self) -> float:
        """The sandbox clock (tests can move it), read once per batch of input: reading
        it costs a file check, too much for every one of thousands of pipelined APPENDs."""
        if self._clock is None:
            self._clock = self.server.identity.now()
        return self._clock

    # --- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        try:
            self.untagged("OK " + self.settings.greeting())
            await self.flush()
            while not self.closing:
                data = await self._next_input()
                if data is None:
                    self.close_with(texts.BYE_IDLE_TIMEOUT)
                    await self.flush()
                    break
                if data == b"" and self.reader.at_eof():
                    break
                self._clock = None
                self.conn.receive_data(data)
                await self._process()
        except RemoteProtocolError as exc:
            log.debug("closing a connection after a protocol error: %s", exc)
            with contextlib.suppress(ExoimapError, OSError):
                self.close_with(texts.BYE_AFTER_BAD_COMMANDS)
                await self.flush()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug must cost one connection, not the server
            log.exception("sandbox IMAP: internal error; closing the connection")
            with contextlib.suppress(Exception):
                self.close_with(texts.BYE_SERVER_UNAVAILABLE)
                await self.flush()
        finally:
            await self._cleanup()

    async def _cleanup(self) -> None:
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(BaseException):
                await self._read_task
        self._detach()
        with contextlib.suppress(Exception):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)

    def _detach(self) -> None:
        if callable(self._remove_listener):
            self._remove_listener()
            self._remove_listener = None
        if self.mailbox is not None and self.state is not SessionState.NOT_CONNECTED:
            self.mailbox.connections -= 1
        self.mailbox = None

    async def _next_input(self) -> bytes | None:
        """The next bytes from the client; ``None`` after the idle timeout."""
        loop = asyncio.get_running_loop()
        authenticated = self.state is not SessionState.NOT_AUTHENTICATED
        timeout = (
            self.settings.authenticated_timeout if authenticated else self.settings.preauth_timeout
        )
        deadline = loop.time() + timeout
        while True:
            if self._read_task is None:
                self._read_task = asyncio.ensure_future(self.reader.read(65536))
            waiters: set[asyncio.Future[Any]] = {self._read_task}
            change: asyncio.Task[bool] | None = None
            if self.idle_tag is not None:
                change = asyncio.ensure_future(self.changed.wait())
                waiters.add(change)
            remaining = deadline - loop.time()
            if remaining <= 0:
                if change is not None:
                    change.cancel()
                return None
            done, _ = await asyncio.wait(
                waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if change is not None and change not in done:
                change.cancel()
            if self._read_task in done:
                task, self._read_task = self._read_task, None
                return task.result()
            if change is not None and change in done:
                self.changed.clear()
                self.push_updates()
                await self.flush()
                if self.closing:
                    return b""
                continue
            if not done:
                return None

    async def _process(self) -> None:
        """Answer everything the client sent so far. The answers to a pipelined batch go
        out together (a write per command cost thousands of TLS records per restore)."""
        events = 0
        while not self.closing:
            event = self.conn.next_event()
            if isinstance(event, NeedData):
                break
            if isinstance(event, ConnectionClosed):
                self.closing = True
                break
            await self._dispatch(event)
            events += 1
            if events % _FLUSH_EVERY == 0:  # bounds what waits in memory
                await self.flush()
        await self.flush()

    # --- events -------------------------------------------------------------------------

    async def _dispatch(self, event: object) -> None:
        if isinstance(event, CommandReceived):
            await self._command(event.tag, event.command)
        elif isinstance(event, BadCommand):
            self._bad_command(event)
        elif isinstance(event, AuthenticateData):
            self.auth_tag = None
            if event.data is None:
                self.tagged(event.tag, Status.NO, texts.AUTH_CANCELLED)
                return
            self._finish_auth(event.tag, self._decide(self.auth_mechanism, event.data.reveal()))
        elif isinstance(event, IdleDone):
            self.idle_tag = None
            if self._token_expired():
                self.close_with(texts.BYE_TOKEN_EXPIRED)
                return
            self.push_updates()
            self.ok(event.tag, "IDLE")
        elif isinstance(event, AppendStart):
            self._append_start(event.tag, event.command, event.synchronizing)
        elif isinstance(event, AppendChunk):
            if self.append is not None and self.append_refusal is None:
                self.append_chunks.append(event.data)
        elif isinstance(event, AppendEnd):
            self._append_end(event.tag)

    def _append_start(self, tag: str, command: c.Append, sync: bool) -> None:
        """Take an APPEND's message, or refuse it: at once when the client waits for a
        continuation, otherwise once it has sent the message."""
        if self._token_expired():
            self.close_with(texts.BYE_TOKEN_EXPIRED)
            return
        self.append = (tag, command)
        self.append_chunks = []
        refusal = self._append_admission() or handlers.append_refusal(self, command)
        self.append_refusal = refusal
        if refusal is None or not refusal.bad:
            self.bad_commands = 0
        if refusal is None or refusal.after_literal:
            if sync:
                self.send(ContinuationRequest(texts.LITERAL_CONTINUATION))
            return
        if sync:  # answered instead of "+": the client will not send the message
            self.append = None
            self.append_refusal = None
            self._refuse_append(tag, refusal)

    def _append_admission(self) -> handlers.AppendRefusal | None:
        """The session-level refusals of APPEND (as :meth:`_admitted` for other commands)."""
        if self.state is SessionState.NOT_CONNECTED:
            return handlers.AppendRefusal(Status.BAD, texts.NOT_CONNECTED, bad=True)
        if self.state not in (SessionState.AUTHENTICATED, SessionState.SELECTED):
            return handlers.AppendRefusal(Status.BAD, texts.INVALID_STATE, bad=True)
        return None

    def _append_end(self, tag: str) -> None:
        pending, self.append = self.append, None
        refusal, self.append_refusal = self.append_refusal, None
        if pending is None:
            return
        if refusal is not None:
            self._refuse_append(tag, refusal)
            return
        chunks, self.append_chunks = self.append_chunks, []
        first = chunks[0] if len(chunks) == 1 else None
        data = first if isinstance(first, bytes) else b"".join(chunks)
        handlers.append_message(self, tag, pending[1], data)

    def _refuse_append(self, tag: str, refusal: handlers.AppendRefusal) -> None:
        if refusal.bad:
            self.count_bad(tag, refusal.text)
        else:
            self.tagged(tag, refusal.status, refusal.text, refusal.code)
        if refusal.bye:
            self.close_with(texts.BYE_AFTER_BAD_COMMANDS)

    def _bad_command(self, event: BadCommand) -> None:
        if event.tag is not None and event.tag == self.auth_tag:
            self.auth_tag = None
            self._finish_auth(event.tag, AuthDecision.refused(Cause.MALFORMED))
            return
        raw = event.raw
        if not raw.isascii():
            text = texts.COMMAND_ERROR_11
        else:
            words = raw.split(None, 2)
            name = words[1].upper() if len(words) > 1 else b""
            text = (
                texts.COMMAND_ARGUMENT_ERROR_12
                if name in _KNOWN_COMMANDS
                else texts.COMMAND_ERROR_12
            )
        if event.tag == self.idle_tag:
            self.idle_tag = None
        self.count_bad(event.tag, text)

    def count_bad(self, tag: str | None, text: str) -> None:
        """Answer BAD; the third bad command in a row ends the connection (1.4 [C])."""
        if tag is None:
            self.untagged("BAD " + text)
        else:
            self.tagged(tag, Status.BAD, text)
        self.bad_commands += 1
        if self.bad_commands >= self.settings.max_bad_commands:
            self.close_with(texts.BYE_AFTER_BAD_COMMANDS)

    def _token_expired(self) -> bool:
        return (
            self.settings.end_session_on_token_expiry
            and self.expires_at is not None
            and self.now() >= self.expires_at
        )

    async def _command(self, tag: str, command: c.Command) -> None:
        if not self._admitted(tag, command) or not self._app_admitted(tag, command):
            return
        self.bad_commands = 0
        answer = _SESSION_COMMANDS.get(type(command))
        if answer is not None:
            answer(self, tag, command)
            return
        await handlers.mailbox_command(self, tag, command)
        if not isinstance(command, c.Fetch | c.StoreFlags | c.Search) or command.uid:
            self.push_updates()

    def _admitted(self, tag: str, command: c.Command) -> bool:
        """Whether the connection may run ``command`` now; if not, it has been answered."""
        if self.state is SessionState.NOT_CONNECTED and not isinstance(command, c.Logout):
            self.count_bad(tag, texts.NOT_CONNECTED)
            return False
        if self._token_expired() and not isinstance(command, c.Logout):
            self.close_with(texts.BYE_TOKEN_EXPIRED)
            return False
        if not self._valid_in_state(command):
            self.count_bad(tag, texts.INVALID_STATE)
            return False
        return True

    def _app_admitted(self, tag: str, command: c.Command) -> bool:
        """Whether the signed-in app is within its tenant-wide command budget; if not, the
        command has been answered as throttled."""
        policy = self.settings.throttle
        if self.app is None:
            self._before_signin.append(time.monotonic())
            return True
        # LOGOUT counts but is never refused: a throttled client may always leave
        limit = None if isinstance(command, c.Logout) else policy.max_app_requests
        if self.server.app_requests.admit(self.app, limit, policy.window_seconds):
            return True
        self.tagged(tag, Status(policy.status), texts.throttled(policy.backoff_ms))
        return False

    def _valid_in_state(self, command: c.Command) -> bool:
        if isinstance(command, _ANY_STATE):
            return True
        state = self.state
        if isinstance(command, _NOT_AUTHENTICATED):
            return state is SessionState.NOT_AUTHENTICATED
        if isinstance(command, _AUTHENTICATED):
            return state in (SessionState.AUTHENTICATED, SessionState.SELECTED)
        if isinstance(command, _SELECTED):
            return state is SessionState.SELECTED
        return False  # ENABLE and anything Exchange does not offer

    # --- commands that need no mailbox --------------------------------------------------

    def _capability(self, tag: str, command: c.Capability) -> None:
        authenticated = self.state is not SessionState.NOT_AUTHENTICATED
        self.untagged("CAPABILITY " + self.settings.capabilities(authenticated=authenticated))
        self.ok(tag, "CAPABILITY")

    def _noop(self, tag: str, command: c.Noop) -> None:
        self.push_updates()
        self.ok(tag, "NOOP")

    def _logout(self, tag: str, command: c.Logout) -> None:
        self.untagged("BYE " + texts.BYE_LOGOUT)
        self.ok(tag, "LOGOUT")
        self.closing = True

    def _id(self, tag: str, command: c.Id) -> None:
        self.untagged("ID " + texts.ID_RESPONSE)
        self.ok(tag, "ID")

    def _login(self, tag: str, command: c.Login) -> None:
        decision = self.server.authorizer.password(command.username, command.password)
        self._finish_auth(tag, decision, login=True)

    def _idle(self, tag: str, command: c.Idle) -> None:
        if not self.settings.idle_advertised:
            self.count_bad(tag, texts.COMMAND_ERROR_12)  # as for a command it does not know
            return
        if self.settings.refuse_idle:
            self.tagged(tag, Status.NO, texts.COMMAND_FAILED.format(command="IDLE"))
            return
        self.idle_tag = tag
        self.push_updates()
        self.send(ContinuationRequest(texts.IDLE_CONTINUATION))

    def _namespace(self, tag: str, command: c.Namespace) -> None:
        self.untagged("NAMESPACE " + texts.NAMESPACE_RESPONSE)
        self.ok(tag, "NAMESPACE")

    # --- authentication -----------------------------------------------------------------

    def _authenticate(self, tag: str, command: c.Authenticate) -> None:
        mechanism = command.mechanism.upper()
        allowed = {"XOAUTH2"} | ({"PLAIN"} if self.settings.basic_auth_advertised else set())
        if mechanism not in allowed:
            self.auth_tag = None
            self.count_bad(tag, texts.COMMAND_ARGUMENT_ERROR_11)
            return
        if command.initial_response is None:
            self.auth_tag = tag
            self.auth_mechanism = mechanism
            self.send(ContinuationRequest(None))  # 1.4 [C]: a bare "+"
            return
        self._finish_auth(tag, self._decide(mechanism, command.initial_response.reveal()))

    def _decide(self, mechanism: str, raw: bytes) -> AuthDecision:
        if mechanism == "PLAIN":
            return self.server.authorizer.plain(raw)
        return self.server.authorizer.xoauth2(raw)

    def _finish_auth(self, tag: str, decision: AuthDecision, *, login: bool = False) -> None:
        command = "LOGIN" if login else "AUTHENTICATE"
        if decision.accepted and decision.connected and decision.mailbox is not None:
            box = self.server.mailboxes.get(decision.mailbox)
            if box.connections >= self.settings.max_connections_per_mailbox:
                limit = self.settings.failures.too_many_connections
                if limit is AuthOutcome.NOT_CONNECTED:
                    decision = AuthDecision(True, False, decision.cause, decision.mailbox)
                else:
                    decision = AuthDecision.refused(decision.cause)
            else:
                box.connections += 1
                self.mailbox = box
                self.expires_at = decision.expires_at
                self.app = decision.app
                if self.app is not None:
                    self.server.app_requests.record(self.app, self._before_signin)
                self.state = SessionState.AUTHENTICATED
                self._remove_listener = box.store.add_listener(self._on_store_event)
                log.info("sandbox IMAP: %s signed in to %s", command, box.upn)
                self.ok(tag, command)
                return
        if decision.accepted:
            self.state = SessionState.NOT_CONNECTED
            log.info("sandbox IMAP: signed in but not connected (%s)", decision.cause.value)
            self.ok(tag, command)
            return
        log.info("sandbox IMAP: %s refused (%s)", command, decision.cause.value)
        self.tagged(tag, Status.NO, texts.LOGIN_FAILED if login else texts.AUTH_FAILED)
        self.auth_failures += 1
        if self.auth_failures >= self.settings.max_auth_failures:
            self.close_with(texts.BYE_AFTER_AUTH_FAILURES)

    # --- the selected folder ------------------------------------------------------------

    def select(
        self,
        folder: str,
        *,
        readonly: bool,
        uidvalidity: int,
        uids: list[int],
        flags: dict[int, frozenset[str]],
    ) -> None:
        """SELECT/EXAMINE: the client now knows ``uids`` (in order) with ``flags``."""
        self.selected = folder
        self.readonly = readonly
        self.uidvalidity = uidvalidity
        self.known = uids
        self.known_flags = flags
        self.state = SessionState.SELECTED

    def deselect(self) -> None:
        """No folder selected any more (CLOSE, UNSELECT, our own DELETE, a new SELECT)."""
        self.selected = None
        self.known = []
        self.known_flags = {}
        self.dirty = self.invalidated = False
        if self.state is SessionState.SELECTED:
            self.state = SessionState.AUTHENTICATED

    def rename_selected(self, new_name: str) -> None:
        """Our own RENAME of the selected folder keeps it selected (no BYE)."""
        self.selected = new_name
        self.invalidated = False

    def _on_store_event(self, event: StoreEvent) -> None:
        if self.selected is None or event.folder != self.selected:
            return
        if event.kind.value in ("uidvalidity", "folder_deleted", "folder_renamed"):
            self.invalidated = True
        self.dirty = True
        self.changed.set()

    def push_updates(self) -> None:
        """Send EXPUNGE / EXISTS / FETCH FLAGS for changes since the session last looked."""
        if self.selected is None or not self.dirty or self.mailbox is None:
            return
        self.dirty = False
        if self.invalidated:
            self.close_with(texts.BYE_SERVER_UNAVAILABLE)
            return
        messages = handlers.folder_messages(self.mailbox, self.selected)
        for index in range(len(self.known) - 1, -1, -1):
            uid = self.known[index]
            if uid not in messages:
                self.raw(b"* %d EXPUNGE\r\n" % (index + 1))
                del self.known[index]
                self.known_flags.pop(uid, None)
        for seq, uid in enumerate(self.known, 1):
            flags = messages[uid].flags
            if self.known_flags.get(uid) != flags:
                self.known_flags[uid] = flags
                self.raw(b"* %d FETCH (FLAGS (%s))\r\n" % (seq, " ".join(sorted(flags)).encode()))
        newest = self.known[-1] if self.known else 0
        added = sorted(uid for uid in messages if uid > newest)
        if added:
            self.known.extend(added)
            for uid in added:
                self.known_flags[uid] = messages[uid].flags
            self.raw(b"* %d EXISTS\r\n" % len(self.known))


# The commands the session answers itself, by type; the rest are mailbox commands (.handlers).
_SESSION_COMMANDS: dict[type, Callable[[Session, str, Any], None]] = {
    c.Capability: Session._capability,
    c.Noop: Session._noop,
    c.Logout: Session._logout,
    c.Id: Session._id,
    c.Authenticate: Session._authenticate,
    c.Login: Session._login,
    c.Idle: Session._idle,
    c.Namespace: Session._namespace,
}
