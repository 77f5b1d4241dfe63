"""The resilient async IMAP client: reconnects, refreshes, waits out throttling, resumes.

:class:`ImapClient` keeps one signed-in :class:`~exoimap.net.session.ImapSession` and runs
operations on it. Without the caller's help it

- reconnects after a dropped connection or a ``BYE``, with exponential backoff and jitter,
  and re-selects the folder it was working in (checking that UIDVALIDITY did not change);
- re-establishes the session shortly before the access token expires (Exchange would end it
  with ``* BYE Session invalidated - AccessTokenExpired``), and if that BYE comes anyway,
  continues on a new session;
- waits the backoff a throttling answer suggests, reported as a ``throttled`` event;
- fetches bodies with pipelined ``UID FETCH`` batches and, after a drop, resumes: messages
  already delivered are not fetched again and a message cut off half way continues from
  the byte where it stopped (``BODY.PEEK[]<offset>``).

Sign-in failures (:class:`~exoimap.errors.ImapAuthenticationFailed`) and TLS refusals are
never retried. A server that cannot be connected to at all is given up on once
``RetryPolicy.give_up_after`` seconds have passed since connecting first failed
(:class:`~exoimap.errors.ServerUnreachable`); the connections of one store share that clock
(:class:`~exoimap.net.recovery.Reachability`).

See ``docs/network.md`` for the behaviour in user terms.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeVar

from exoimap.errors import (
    ConnectionLost,
    FolderError,
    FolderNotFound,
    RemoteProtocolError,
    Throttled,
)
from exoimap.net.credentials import Credentials, OAuth2Credentials, TokenSource
from exoimap.net.recovery import Backoff, Reachability, refresh_deadline
from exoimap.net.session import Endpoint, EventSink, ImapSession, NetEvent, Reply
from exoimap.protocol import commands as c
from exoimap.protocol.events import FetchEnd, FetchStart
from exoimap.protocol.types import (
    ExistsResponse,
    FetchResponse,
    NumberCode,
    PermanentFlagsCode,
    SequenceSet,
    SimpleCode,
    StatusResponse,
)
from exoimap.untrusted import shown

__all__ = [
    "Endpoint",
    "FetchedBody",
    "ImapClient",
    "MailboxStatus",
    "NetEvent",
    "RetryPolicy",
    "TokenSource",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

FETCH_ITEMS: tuple[c.FetchItem, ...] = (
    "UID",
    "FLAGS",
    "INTERNALDATE",
    "RFC822.SIZE",
    c.BodySection(peek=True),
)
#: Keep UID sets well under Exchange's 10240-byte command limit.
_MAX_SET_TEXT = 6000


@dataclass(frozen=True)
class RetryPolicy:
    """How persistent the client is."""

    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_attempts: int = 8
    #: Re-establish the session this many seconds before the token expires.
    refresh_margin: float = 300.0
    #: Longest throttling wait accepted; a longer suggestion is raised as Throttled.
    max_throttle_wait: float = 900.0
    max_throttle_retries: int = 10
    #: Seconds connecting to the server may keep failing before the run gives up on it
    #: (:class:`~exoimap.errors.ServerUnreachable`); None: only ``max_attempts`` limits.
    give_up_after: float | None = 300.0
    #: Messages per UID FETCH command and commands kept in flight.
    fetch_batch: int = 500
    fetch_depth: int = 2


@dataclass(frozen=True)
class MailboxStatus:
    """What SELECT/EXAMINE reported."""

    name: str
    uidvalidity: int
    uidnext: int
    exists: int
    highest_modseq: int | None = None
    permanent_flags: tuple[str, ...] = ()
    read_only: bool = False


@dataclass
class FetchedBody:
    """One fetched message: metadata first, then ``chunks`` yields exactly ``size`` bytes."""

    uid: int
    flags: tuple[str, ...]
    internal_date: dt.datetime
    size: int
    chunks: AsyncIterator[bytes] = field(repr=False)
    modseq: int | None = None


class ImapClient:
    """A self-healing connection to one mailbox (see the module docstring)."""

    def __init__(
        self,
        endpoint: Endpoint,
        credentials: Credentials,
        *,
        on_event: EventSink | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        account: str | None = None,
        enable: tuple[str, ...] = (),
        reachability: Reachability | None = None,
    ) -> None:
        """``reachability``: shared by the connections of one account's run (a store's
        pool), so the deadline of an unreachable server is counted once for all of them."""
        self.endpoint = endpoint
        #: The configured account name, recorded in audit events.
        self.account = account
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self._on_event = on_event
        self._sleep = sleep
        self._clock = clock
        self.reachability = reachability or Reachability(
            endpoint.host, give_up_after=self.retry.give_up_after
        )
        self._session: ImapSession | None = None
        self._uidvalidity: dict[str, int] = {}
        #: Extensions to ENABLE on every session when the server offers them.
        self._enabled: set[str] = {e.upper() for e in enable}
        self.sessions_opened = 0

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> ImapClient:
        await self.session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.logout()

    def _emit(self, event: NetEvent) -> None:
        # A throttling wait is one line for the person watching: the event sink (the sync
        # display) prints it, so the stderr log repeats it only when nobody receives events.
        shown_elsewhere = event.kind == "throttled" and self._on_event is not None
        if event.kind in ("throttled", "retry", "refresh") and not shown_elsewhere:
            log.warning("%s %s:%s %s", event.kind, event.host, event.port, event.detail)
        else:
            log.info("%s %s:%s %s", event.kind, event.host, event.port, event.detail)
        if self._on_event is not None:
            self._on_event(event)

    def _note(self, kind: str, detail: str, wait: float | None = None) -> None:
        self._emit(NetEvent(kind, self.endpoint.host, self.endpoint.port, detail=detail, wait=wait))

    @property
    def capabilities(self) -> frozenset[str]:
        return self._session.capabilities if self._session is not None else frozenset()

    @property
    def exchange(self) -> bool:
        return self._session is not None and self._session.exchange

    @property
    def connected(self) -> bool:
        """Whether a session is open now (it may still turn out dead on the next command)."""
        return self._session is not None and self._session.alive

    # --- sessions -------------------------------------------------------------------------

    async def _connect(self) -> ImapSession:
        session = await ImapSession.open(self.endpoint, self._emit, account=self.account)
        try:
            await session.authenticate(self.credentials)
            wanted = sorted(e for e in self._enabled if e in session.capabilities)
            if wanted and "ENABLE" in session.capabilities:
                await session.command(c.Enable(tuple(wanted)))
        except BaseException:
            await session.close()
            raise
        if isinstance(self.credentials, OAuth2Credentials):
            session.refresh_at = refresh_deadline(
                session.token_expires_at, self._clock(), self.retry.refresh_margin
            )
        self.sessions_opened += 1
        return session

    def _refresh_due(self, session: ImapSession) -> bool:
        return session.refresh_at is not None and self._clock() >= session.refresh_at

    async def session(self) -> ImapSession:
        """A live, signed-in session (reconnecting or refreshing first when needed)."""
        current = self._session
        if current is not None and current.busy:
            # A fetch was abandoned half way: its responses are still coming. Start afresh.
            self._session = None
            await current.close()
            current = None
        if current is not None and current.alive and not self._refresh_due(current):
            return current
        if current is not None and current.alive:
            self._note("refresh", "re-establishing the session before the access token expires")
            self._session = None
            await current.logout()
        elif current is not None:
            self._session = None
            await current.close()
        backoff = self._backoff()
        throttles = 0
        while True:
            try:
                self._session = await self._connect()
            except ConnectionLost as exc:
                first = self.reachability.connect_failed(exc)
                await self._wait_reconnect(backoff, exc, first=first)
            except Throttled as exc:  # the sign-in itself was throttled
                throttles += 1
                await self._wait_throttle(exc, throttles)
            else:
                self.reachability.connected()
                return self._session

    async def _wait_reconnect(self, backoff: Backoff, exc: ConnectionLost, *, first: bool) -> None:
        """After a failed connect: as :meth:`_wait_retry`, but never past the account's
        deadline, where :class:`~exoimap.errors.ServerUnreachable` ends the retries. Only
        the ``first`` failure of the account's connections is a warning (``retry``); the
        others until connecting works again are ``reconnect`` events, logged as info."""
        self.reachability.check()
        kind = "retry" if first else "reconnect"
        await self._wait_retry(backoff, exc, within=self.reachability.remaining(), kind=kind)
        self.reachability.check()

    def _backoff(self) -> Backoff:
        r = self.retry
        return Backoff(base=r.backoff_base, cap=r.backoff_cap, max_attempts=r.max_attempts)

    async def _wait_retry(
        self,
        backoff: Backoff,
        exc: BaseException,
        *,
        within: float | None = None,
        kind: str = "retry",
    ) -> None:
        delay = backoff.next_delay()
        if delay is None:
            raise exc
        if within is not None:
            delay = max(0.0, min(delay, within))
        self._note(kind, f"{exc}; retrying in {delay:.2f} s", wait=delay)
        await self._sleep(delay)

    async def _wait_throttle(self, exc: Throttled, count: int) -> None:
        if count > self.retry.max_throttle_retries or exc.backoff > self.retry.max_throttle_wait:
            raise exc
        # the session's "throttled" event already said how long this waits
        await self._sleep(exc.backoff)

    async def _drop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def run(self, operation: Callable[[ImapSession], Awaitable[T]]) -> T:
        """Run ``operation`` on a live session, retrying it after drops and throttling.
        The operation must be safe to repeat (reads, flag sets, idempotent changes)."""
        backoff = self._backoff()
        throttles = 0
        while True:
            session = await self.session()
            try:
                return await operation(session)
            except Throttled as exc:
                throttles += 1
                await self._wait_throttle(exc, throttles)
            except ConnectionLost as exc:
                await self._drop()
                await self._wait_retry(backoff, exc)

    # --- folders --------------------------------------------------------------------------

    async def enable(self, extension: str) -> bool:
        """ENABLE an extension (CONDSTORE, QRESYNC) on this and every later session."""
        if extension.upper() not in self.capabilities:
            return False
        self._enabled.add(extension.upper())

        async def go(s: ImapSession) -> Reply:
            return await s.command(c.Enable((extension.upper(),)))

        return (await self.run(go)).ok

    async def _select(self, session: ImapSession, name: str, read_only: bool) -> MailboxStatus:
        cmd: c.Command = c.Examine(name) if read_only else c.Select(name)
        session.selected = None
        reply = await session.command(cmd)
        if not reply.ok:
            if "doesn't exist" in reply.done.text or "NONEXISTENT" in repr(reply.done.code):
                raise FolderNotFound(f"no folder {name!r}: {shown(reply.done.text)}", folder=name)
            raise FolderError(f"cannot open folder {name!r}: {shown(reply.done.text)}", folder=name)
        status = mailbox_status(name, reply, read_only)
        if status.uidvalidity == 0:
            raise FolderError(no_uidvalidity(name), folder=name)
        known = self._uidvalidity.get(name)
        if known is not None and known != status.uidvalidity:
            self._uidvalidity[name] = status.uidvalidity
            raise FolderError(
                f"the UIDVALIDITY of {name!r} changed from {known} to {status.uidvalidity}: "
                "every UID known for it is void and must be listed again",
                folder=name,
                retryable=True,
            )
        self._uidvalidity[name] = status.uidvalidity
        session.selected = name
        return status

    async def select(self, name: str, *, read_only: bool = False) -> MailboxStatus:
        """Open ``name``; later operations in it re-select it after a reconnect."""
        self._uidvalidity.pop(name, None)

        async def go(s: ImapSession) -> MailboxStatus:
            return await self._select(s, name, read_only)

        return await self.run(go)

    async def in_folder(self, name: str, operation: Callable[[ImapSession], Awaitable[T]]) -> T:
        """Run ``operation`` with ``name`` selected (re-selected after a reconnect)."""

        async def go(s: ImapSession) -> T:
            if s.selected != name:
                await self._select(s, name, read_only=False)
            return await operation(s)

        return await self.run(go)

    # --- fetching -------------------------------------------------------------------------

    async def fetch(
        self, folder: str, uids: Sequence[int], *, items: tuple[c.FetchItem, ...] = FETCH_ITEMS
    ) -> AsyncGenerator[FetchedBody, None]:
        """Stream the messages ``uids`` of ``folder`` in pipelined batches; UIDs that no
        longer exist are skipped. Survives drops, token expiry and throttling (see module)."""
        remaining = sorted(set(uids))
        delivered: set[int] = set()
        inner = self._fetch_with_recovery(folder, remaining, delivered, items)
        try:
            async with contextlib.aclosing(inner):
                async for message in inner:
                    yield message
        finally:
            session = self._session
            if session is not None and session.busy:
                # The consumer stopped early: drop the connection rather than read the rest.
                await self._drop()

    async def _fetch_with_recovery(
        self,
        folder: str,
        remaining: list[int],
        delivered: set[int],
        items: tuple[c.FetchItem, ...],
    ) -> AsyncGenerator[FetchedBody, None]:
        backoff = self._backoff()
        throttles = 0
        while True:
            todo = [u for u in remaining if u not in delivered]
            if not todo:
                return
            try:
                session = await self.session()
                if session.selected != folder:
                    await self._select(session, folder, read_only=False)
                async for message in self._fetch_pipelined(session, folder, todo, delivered, items):
                    yield message
                    backoff.reset()
                    throttles = 0  # progress: the server lets us through again
                return
            except _Rotate:
                continue
            except Throttled as exc:
                throttles += 1
                await self._drop()  # its other in-flight batches are void now
                await self._wait_throttle(exc, throttles)
            except ConnectionLost as exc:
                await self._drop()
                await self._wait_retry(backoff, exc)

    def _batches(self, uids: list[int]) -> deque[list[int]]:
        out: deque[list[int]] = deque()
        size = self.retry.fetch_batch
        i = 0
        while i < len(uids):
            batch = uids[i : i + size]
            while len(batch) > 1 and len(str(SequenceSet.of(*batch))) > _MAX_SET_TEXT:
                batch = batch[: len(batch) // 2]
            out.append(batch)
            i += len(batch)
        return out

    async def _fetch_pipelined(
        self,
        session: ImapSession,
        folder: str,
        uids: list[int],
        delivered: set[int],
        items: tuple[c.FetchItem, ...],
    ) -> AsyncIterator[FetchedBody]:
        waiting = self._batches(uids)
        in_flight: deque[str] = deque()
        #: per command, the UIDs it asked for and not yet received (each comes at most once)
        asked: dict[str, set[int]] = {}

        sent = 0

        async def send_more() -> None:
            nonlocal sent
            while waiting and len(in_flight) < self.retry.fetch_depth:
                if sent and self._refresh_due(session):
                    return  # let the running commands finish; the caller rotates the session
                sent += 1
                batch = waiting.popleft()
                cmd = c.Fetch(SequenceSet.of(*batch), items, uid=True)
                tag = await session.send_paced(cmd, stream=True)
                in_flight.append(tag)
                asked[tag] = set(batch)

        await send_more()
        while in_flight:
            tag = in_flight[0]
            while (item := await session.next_fetch_item(tag)) is not None:
                message = self._message_of(item, session, tag, folder, delivered)
                if message is None:
                    continue
                if message.uid not in asked[tag]:
                    # a UID nobody asked for, or one sent twice: never pass it on
                    await self._drop()
                    raise _unasked(folder, message.uid)
                asked[tag].discard(message.uid)
                yield message
                await _drain(message.chunks)  # whatever the consumer did not read
                delivered.add(message.uid)
                if session is not self._session or not session.alive:
                    raise _Rotate()  # a mid-body recovery replaced the session
            reply = await session.wait(tag)
            in_flight.popleft()
            del asked[tag]
            session.check_throttle(reply)
            if not reply.ok:
                raise FolderError(
                    f"UID FETCH in {folder!r} failed: {shown(reply.done.text)}", folder=folder
                )
            await send_more()
        if waiting:
            raise _Rotate()

    def _message_of(
        self, item: object, session: ImapSession, tag: str, folder: str, delivered: set[int]
    ) -> FetchedBody | None:
        """The message a streaming FETCH item begins, if it begins one (a stray chunk or
        end belongs to a message the consumer abandoned)."""
        if isinstance(item, FetchResponse):
            return self._whole(item)
        if isinstance(item, FetchStart):
            return self._streamed(session, tag, folder, item, delivered)
        return None

    def _whole(self, fetch: FetchResponse) -> FetchedBody | None:
        body = fetch.body("")
        if fetch.uid is None or body is None or body.data is None:
            return None
        if fetch.internal_date is None:
            raise RemoteProtocolError("the server sent a message without its INTERNALDATE")
        data = body.data

        async def one() -> AsyncIterator[bytes]:
            yield data

        return FetchedBody(
            uid=fetch.uid,
            flags=fetch.flags or (),
            internal_date=fetch.internal_date,
            size=len(data),
            chunks=one(),
            modseq=fetch.modseq,
        )

    def _streamed(
        self,
        session: ImapSession,
        tag: str,
        folder: str,
        start: FetchStart,
        delivered: set[int],
    ) -> FetchedBody | None:
        fetch = start.fetch
        size = start.body.size or 0
        if fetch.uid is None or fetch.internal_date is None or fetch.flags is None:
            raise RemoteProtocolError(
                "the server sent a message body before its UID, FLAGS and INTERNALDATE"
            )
        uid = fetch.uid

        async def chunks() -> AsyncIterator[bytes]:
            got = 0
            try:
                while True:
                    item = await session.next_fetch_item(tag)
                    if isinstance(item, bytes):
                        got += len(item)
                        yield item
                    elif isinstance(item, FetchEnd) or item is None:
                        break
            except ConnectionLost as exc:
                if got >= size:
                    return
                async for rest in self._resume_body(folder, uid, got, size, exc):
                    got += len(rest)
                    yield rest

        return FetchedBody(
            uid=uid,
            flags=fetch.flags,
            internal_date=fetch.internal_date,
            size=size,
            chunks=chunks(),
            modseq=fetch.modseq,
        )

    async def _resume_body(
        self, folder: str, uid: int, offset: int, size: int, exc: ConnectionLost
    ) -> AsyncIterator[bytes]:
        """After a drop in the middle of a body: reconnect and fetch the rest of it."""
        await self._drop()
        backoff = self._backoff()
        await self._wait_retry(backoff, exc)
        while True:
            try:
                session = await self.session()
                if session.selected != folder:
                    await self._select(session, folder, read_only=False)
                self._note("resume", f"message {uid}: continuing at byte {offset} of {size}")
                part = c.BodySection(peek=True, partial=(offset, size - offset))
                tag = await session.send_paced(
                    c.Fetch(SequenceSet.of(uid), ("UID", part), uid=True), stream=True
                )
                while (item := await session.next_fetch_item(tag)) is not None:
                    if isinstance(item, FetchResponse | FetchStart) and item.uid not in (None, uid):
                        await self._drop()
                        raise _unasked(folder, item.uid)
                    if isinstance(item, bytes):
                        offset += len(item)
                        yield item
                    elif isinstance(item, FetchResponse):
                        for body in item.bodies:
                            if body.data is not None:
                                offset += len(body.data)
                                yield body.data
                reply = await session.wait(tag)
                session.check_throttle(reply)
                if not reply.ok or offset < size:
                    raise FolderError(
                        f"message {uid} in {folder!r} could not be fetched again after a "
                        f"dropped connection: {shown(reply.done.text)}",
                        folder=folder,
                        uid=uid,
                    )
                return
            except ConnectionLost as again:
                await self._drop()
                await self._wait_retry(backoff, again)


class _Rotate(ConnectionLost):
    """Internal: batches remain but the session must be re-established (token refresh)."""

    def __init__(self) -> None:
        super().__init__("re-establishing the session before the access token expires")


def _unasked(folder: str, uid: int) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"the server sent message UID {uid} in {folder!r}, which this UID FETCH did not ask "
        "for (or sent it twice); nothing of it was stored and the folder is left for the "
        "next run"
    )


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    async for _ in chunks:
        pass


def no_uidvalidity(name: str) -> str:
    """Why a folder whose UIDVALIDITY is 0 (or missing) is not synced."""
    return (
        f"the server gives folder {name!r} no valid UIDVALIDITY (0, which IMAP forbids): "
        "its UIDs cannot be trusted across sessions, so it is not synced"
    )


def mailbox_status(name: str, reply: Reply, read_only: bool) -> MailboxStatus:
    """Read UIDVALIDITY, UIDNEXT, EXISTS, HIGHESTMODSEQ, PERMANENTFLAGS from a SELECT."""
    uidvalidity = uidnext = exists = 0
    modseq: int | None = None
    permanent: tuple[str, ...] = ()
    for response in reply.untagged:
        if isinstance(response, ExistsResponse):
            exists = response.count
        elif isinstance(response, StatusResponse) and response.tag is None:
            code = response.code
            if isinstance(code, NumberCode):
                if code.name == "UIDVALIDITY":
                    uidvalidity = code.value
                elif code.name == "UIDNEXT":
                    uidnext = code.value
                elif code.name == "HIGHESTMODSEQ":
                    modseq = code.value
            elif isinstance(code, PermanentFlagsCode):
                permanent = code.flags
    code = reply.done.code
    if isinstance(code, SimpleCode) and code.name == "READ-ONLY":
        read_only = True
    return MailboxStatus(name, uidvalidity, uidnext, exists, modseq, permanent, read_only)
