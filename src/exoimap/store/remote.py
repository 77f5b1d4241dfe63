"""RemoteImapStore: any IMAP server (Exchange Online first) as a :class:`~exoimap.store.base.Store`.

Each open folder works on its own connection from a small pool (``max_connections``, kept
well under Exchange's limit of about 20 per mailbox); store-level calls (LIST, STATUS,
CREATE...) borrow one briefly. Every connection is an :class:`~exoimap.net.imap.ImapClient`,
so drops, token expiry and throttling are handled below this layer; operations that are
safe to repeat (listing, flag changes, expunge) are repeated after a reconnect, APPEND is
not (a stored-but-unacknowledged message must be found by the caller, not duplicated).

Server differences handled here: CONDSTORE/QRESYNC when offered (Dovecot; Exchange has
neither), UIDPLUS APPENDUID or a search fallback for new UIDs, MOVE or COPY+expunge,
PERMANENTFLAGS without ``\\*`` (Exchange keeps only system flags and ``$MDNSent``), and
Exchange's estimated RFC822.SIZE.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager
from dataclasses import replace

from exoimap.errors import FolderError, FolderNotFound
from exoimap.net.credentials import Credentials
from exoimap.net.imap import ImapClient, RetryPolicy, mailbox_status
from exoimap.net.recovery import Reachability
from exoimap.net.session import Endpoint, EventSink, ImapSession, Reply
from exoimap.protocol import commands as c
from exoimap.protocol.headers import parse_message_id
from exoimap.protocol.types import (
    CopyUidCode,
    FetchResponse,
    ListResponse,
    SequenceSet,
    VanishedResponse,
)
from exoimap.store._remote_append import Appender
from exoimap.store._remote_status import missing_folder, status_many, status_of
from exoimap.store.base import (
    AppendItem,
    Capabilities,
    FetchedMessage,
    FolderInfo,
    FolderState,
    MessageInfo,
    MessageListing,
    SpecialUse,
    UidRange,
    is_inbox,
    normalize_flags,
)
from exoimap.untrusted import shown

__all__ = ["RemoteFolder", "RemoteImapStore"]

_ROLES = {
    "\\sent": SpecialUse.SENT,
    "\\drafts": SpecialUse.DRAFTS,
    "\\trash": SpecialUse.TRASH,
    "\\junk": SpecialUse.JUNK,
    "\\archive": SpecialUse.ARCHIVE,
}
#: Most connections one store opens to a mailbox.
MAX_CONNECTIONS = 8
_STORE_BATCH = 500


def _sets(uids: Sequence[int]) -> list[SequenceSet]:
    ordered = sorted(set(uids))
    return [
        SequenceSet.of(*ordered[i : i + _STORE_BATCH]) for i in range(0, len(ordered), _STORE_BATCH)
    ]


class _Pool:
    """At most ``size`` connections; each is lent to one user at a time."""

    def __init__(self, factory: Callable[[], ImapClient], size: int) -> None:
        self._factory = factory
        self._idle: list[ImapClient] = []
        self._all: list[ImapClient] = []
        self._limit = asyncio.Semaphore(size)

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[ImapClient]:
        async with self._limit:
            if self._idle:
                client = self._idle.pop()
            else:
                client = self._factory()
                self._all.append(client)
            try:
                yield client
            finally:
                self._idle.append(client)

    @property
    def connected(self) -> int:
        return sum(1 for client in self._all if client.connected)

    async def trim(self, keep: int) -> None:
        """Close idle connections, the least recently used first, until ``keep`` are left."""
        while len(self._idle) > keep:
            client = self._idle.pop(0)
            self._all.remove(client)
            await client.close()

    async def close(self) -> None:
        """Log every connection out at once: each waits up to its LOGOUT timeout for a slow
        server, and one after another they made a Ctrl-C take that many times as long."""
        clients, self._all, self._idle = self._all, [], []
        outcomes = await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


class RemoteImapStore:
    """A mailbox on an IMAP server. Create with :meth:`connect`."""

    def __init__(
        self,
        endpoint: Endpoint,
        credentials: Credentials,
        *,
        max_connections: int = 4,
        retry: RetryPolicy | None = None,
        on_event: EventSink | None = None,
        account: str | None = None,
        ignore_extensions: tuple[str, ...] = (),
    ) -> None:
        ignored = frozenset(e.upper() for e in ignore_extensions)
        enable = tuple(e for e in ("CONDSTORE", "QRESYNC") if e not in ignored)
        #: One clock for the whole pool: an unreachable server costs one deadline.
        self.reachability = Reachability(
            endpoint.host, give_up_after=(retry or RetryPolicy()).give_up_after
        )

        if "LITERAL+" in ignored:
            endpoint = replace(endpoint, literal_plus=False)

        def factory() -> ImapClient:
            return ImapClient(
                endpoint,
                credentials,
                retry=retry,
                on_event=on_event,
                account=account,
                enable=enable,  # only sent where offered (not on Exchange)
                reachability=self.reachability,
            )

        # Exchange allows about 20 connections per mailbox; stay well below.
        self._max_connections = max(1, min(max_connections, MAX_CONNECTIONS))
        self._pool = _Pool(factory, self._max_connections)
        #: Extensions not to use even when offered (tests of the fallbacks, broken servers).
        self._ignored = ignored
        self._caps: Capabilities = Capabilities()
        self._delimiter = "/"
        self.exchange = False
        #: The server takes several messages in one APPEND (RFC 3502).
        self.multiappend = False

    @classmethod
    async def connect(
        cls,
        endpoint: Endpoint,
        credentials: Credentials,
        *,
        max_connections: int = 4,
        retry: RetryPolicy | None = None,
        on_event: EventSink | None = None,
        account: str | None = None,
        ignore_extensions: tuple[str, ...] = (),
    ) -> RemoteImapStore:
        """Sign in once, learn the server's capabilities and hierarchy delimiter."""
        store = cls(
            endpoint,
            credentials,
            max_connections=max_connections,
            retry=retry,
            on_event=on_event,
            account=account,
            ignore_extensions=ignore_extensions,
        )
        try:
            await store._probe()
        except BaseException:
            await store.close()
            raise
        return store

    async def _probe(self) -> None:
        async with self._pool.client() as client:

            async def probe(s: ImapSession) -> tuple[Reply, Reply]:
                listing = await s.command(c.List("", ""))
                # SELECT, not EXAMINE: a read-only open reports no PERMANENTFLAGS.
                inbox = await s.command(c.Select("INBOX"))
                s.selected = "INBOX" if inbox.ok else None
                return listing, inbox

            listing, inbox = await client.run(probe)
            caps = client.capabilities - self._ignored
            self.exchange = client.exchange
            self.multiappend = "MULTIAPPEND" in caps
            for response in listing.untagged:
                if isinstance(response, ListResponse) and response.delimiter:
                    self._delimiter = response.delimiter
            permanent = mailbox_status("INBOX", inbox, True).permanent_flags
            condstore = "CONDSTORE" in caps
            self._caps = Capabilities(
                condstore=condstore,
                qresync=condstore and "QRESYNC" in caps,
                uidplus="UIDPLUS" in caps,
                move="MOVE" in caps,
                custom_keywords="\\*" in permanent,
                permanent_flags=normalize_flags(
                    [f for f in permanent if f != "\\*"] or ["\\Seen", "\\Answered"]
                ),
                exact_sizes=not self.exchange,
                max_connections=self._max_connections,
                max_message_size=150 * 1024 * 1024 if self.exchange else None,
                # Office 365 ignores \Flagged given in APPEND; a STORE afterwards keeps it
                append_drops_flags=frozenset({"\\Flagged"}) if self.exchange else frozenset(),
            )

    # --- Store protocol -----------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def delimiter(self) -> str:
        return self._delimiter

    async def list_folders(self) -> list[FolderInfo]:
        async with self._pool.client() as client:

            async def go(s: ImapSession) -> Reply:
                return await s.command(c.List("", "*"))

            reply = await client.run(go)
        if not reply.ok:
            raise FolderError(f"LIST failed: {shown(reply.done.text)}")
        folders: list[FolderInfo] = []
        has_archive = any(
            isinstance(r, ListResponse) and "\\archive" in {a.lower() for a in r.attributes}
            for r in reply.untagged
        )
        for r in reply.untagged:
            if not isinstance(r, ListResponse):
                continue
            attrs = {a.lower() for a in r.attributes}
            if "\\nonexistent" in attrs:
                continue
            role = next((role for a, role in _ROLES.items() if a in attrs), None)
            if is_inbox(r.name):
                role = SpecialUse.INBOX
            elif role is None and not has_archive and r.name == "Archive":
                role = SpecialUse.ARCHIVE  # Exchange lists Archive without \Archive
            folders.append(
                FolderInfo(
                    name="INBOX" if is_inbox(r.name) else r.name,
                    delimiter=r.delimiter,
                    role=role,
                    selectable="\\noselect" not in attrs,
                )
            )
        return folders

    async def folder_state(self, name: str) -> FolderState:
        async with self._pool.client() as client:
            return await status_of(client, name, self._caps.condstore)

    async def folder_states(self, names: Sequence[str]) -> dict[str, FolderState]:
        """STATUS of every folder in ``names``, pipelined on one connection: one round trip
        however many folders (the no-change resync asks this of every folder)."""
        if not names:
            return {}
        async with self._pool.client() as client:
            return await status_many(client, names, self._caps.condstore)

    def open_folder(self, name: str) -> AbstractAsyncContextManager[RemoteFolder]:
        return self._open(name)

    @contextlib.asynccontextmanager
    async def _open(self, name: str) -> AsyncIterator[RemoteFolder]:
        canonical = "INBOX" if is_inbox(name) else name
        async with self._pool.client() as client:
            await client.select(canonical)
            yield RemoteFolder(self, client, canonical)

    async def _simple(self, command: c.Command, what: str, name: str) -> Reply:
        async with self._pool.client() as client:

            async def go(s: ImapSession) -> Reply:
                return await s.command(command)

            reply = await client.run(go)
        if not reply.ok and missing_folder(reply):
            raise FolderNotFound(f"no folder {name!r}", folder=name)
        if not reply.ok:
            raise FolderError(f"{what} {name!r} failed: {shown(reply.done.text)}", folder=name)
        return reply

    async def _exists(self, name: str) -> bool:
        async with self._pool.client() as client:

            async def go(s: ImapSession) -> Reply:
                return await s.command(c.List("", name))

            reply = await client.run(go)
        return any(
            isinstance(r, ListResponse)
            and r.name == name
            and "\\nonexistent" not in {a.lower() for a in r.attributes}
            for r in reply.untagged
        )

    async def create_folder(self, name: str, *, role: SpecialUse | None = None) -> None:
        """CREATE ``name`` (servers create missing parents). ``role`` is not sent: the
        CREATE-SPECIAL-USE extension is rare and Exchange lacks it."""
        if await self._exists(name):
            raise FolderError(f"folder {name!r} already exists", folder=name)
        parts = name.split(self._delimiter)
        for depth in range(1, len(parts)):
            parent = self._delimiter.join(parts[:depth])
            if not await self._exists(parent):
                await self._simple(c.Create(parent), "creating", parent)
        await self._simple(c.Create(name), "creating", name)

    async def rename_folder(self, old: str, new: str) -> None:
        if not await self._exists(old):
            raise FolderNotFound(f"no folder {old!r}", folder=old)
        await self._simple(c.Rename(old, new), "renaming", old)

    async def delete_folder(self, name: str) -> None:
        if not await self._exists(name):
            raise FolderNotFound(f"no folder {name!r}", folder=name)
        await self._simple(c.Delete(name), "deleting", name)

    @property
    def connections(self) -> int:
        """How many connections to the server are open now."""
        return self._pool.connected

    async def trim(self, keep: int = 1) -> None:
        """Keep at most ``keep`` idle connections open (a process that parks this store
        between runs holds one, not the ``max_connections`` a big run opened)."""
        await self._pool.trim(keep)

    async def close(self) -> None:
        await self._pool.close()


def _add_stamps(
    messages: list[MessageInfo], untagged: list[object], sample: frozenset[int]
) -> None:
    """Fill in the size and internal date of the sampled messages."""
    stamps = {
        r.uid: r
        for r in untagged
        if isinstance(r, FetchResponse) and r.uid in sample and r.rfc822_size is not None
    }
    for message in messages:
        stamp = stamps.get(message.uid)
        if stamp is not None:
            message.size = stamp.rfc822_size
            message.internal_date = stamp.internal_date


class RemoteFolder:
    """A selected folder on its own connection."""

    def __init__(self, store: RemoteImapStore, client: ImapClient, name: str) -> None:
        self._store = store
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def state(self) -> FolderState:
        condstore = self._store.capabilities.condstore
        return await status_of(self._client, self._name, condstore, keep_selected=True)

    async def list_messages(
        self,
        *,
        changed_since: int | None = None,
        detail: bool = False,
        size_and_date: bool | frozenset[int] = False,
        uids: UidRange | None = None,
    ) -> MessageListing:
        caps = self._store.capabilities
        sized = detail or size_and_date is True
        sample = (
            size_and_date if isinstance(size_and_date, frozenset) and not sized else frozenset()
        )
        state = await self.state()
        since = changed_since if caps.condstore else None
        if state.exists == 0:  # an empty folder is fully known: whatever was there is gone
            return MessageListing(state, [], complete=True, vanished=None)
        items: list[c.FetchItem] = ["UID", "FLAGS"]
        if caps.condstore:
            items.append("MODSEQ")
        if sized:
            items += ["RFC822.SIZE", "INTERNALDATE"]
        if detail:
            items.append(c.BodySection("HEADER.FIELDS (MESSAGE-ID)", peek=True))
        vanished = since is not None and caps.qresync
        window = uids or UidRange(1)
        listed = SequenceSet.range(window.first, window.last)
        commands = [c.Fetch(listed, tuple(items), uid=True, changed_since=since, vanished=vanished)]
        if sample:  # the sample's sizes and dates in the same round trip
            stamps: tuple[c.FetchItem, ...] = ("UID", "RFC822.SIZE", "INTERNALDATE")
            commands.append(c.Fetch(SequenceSet.of(*sorted(sample)), stamps, uid=True))
        untagged = await self._client.in_folder(self._name, self._pipelined(commands))
        messages: list[MessageInfo] = []
        for r in untagged:
            # "n:*" also answers with the newest message when all UIDs are below n
            if not isinstance(r, FetchResponse) or r.uid is None or r.uid not in window:
                continue
            if sample and r.flags is None and r.rfc822_size is not None:
                continue  # the sample's answer, added below
            header = r.bodies[0].data if detail and r.bodies else None
            messages.append(
                MessageInfo(
                    uid=r.uid,
                    flags=normalize_flags(r.flags or ()),
                    size=r.rfc822_size if sized else None,
                    internal_date=r.internal_date if sized else None,
                    message_id=parse_message_id(header) if detail and header else None,
                    modseq=r.modseq,
                )
            )
        if sample:
            _add_stamps(messages, untagged, sample)
        messages.sort(key=lambda m: m.uid)
        gone: frozenset[int] | None = None
        if vanished:
            gone = frozenset(
                uid
                for r in untagged
                if isinstance(r, VanishedResponse) and r.earlier
                for uid in r.uids
                if uid in window
            )
        return MessageListing(state, messages, complete=since is None, vanished=gone)

    def _pipelined(
        self, commands: Sequence[c.Command]
    ) -> Callable[[ImapSession], Awaitable[list[object]]]:
        """Send every command at once and wait for all: the untagged responses of all, each
        once (a response arriving while several commands are in flight goes to each)."""

        async def go(s: ImapSession) -> list[object]:
            tags = [await s.send_paced(command) for command in commands]
            seen: set[int] = set()
            untagged: list[object] = []
            for tag in tags:
                reply = await s.wait(tag)
                s.check_throttle(reply)
                if not reply.ok:
                    text = shown(reply.done.text)
                    raise FolderError(f"listing {self._name!r} failed: {text}")
                for response in reply.untagged:
                    if id(response) not in seen:
                        seen.add(id(response))
                        untagged.append(response)
            return untagged

        return go

    async def fetch(self, uids: Sequence[int]) -> AsyncIterator[FetchedMessage]:
        bodies = self._client.fetch(self._name, uids)
        async with contextlib.aclosing(bodies):  # an early stop drops the half-read connection
            async for body in bodies:
                yield FetchedMessage(
                    uid=body.uid,
                    flags=normalize_flags(body.flags),
                    internal_date=body.internal_date,
                    size=body.size,
                    chunks=body.chunks,
                )

    async def append(self, items: AsyncIterable[AppendItem]) -> list[int]:
        """APPEND each item and return the new UIDs (see :mod:`._remote_append`: grouped
        with MULTIAPPEND and pipelined where the server allows; a refused message raises
        :class:`~exoimap.errors.AppendIncomplete` once the others are stored)."""
        session = await self._client.session()
        caps = self._store.capabilities
        appender = Appender(
            session,
            self._name,
            uidplus=caps.uidplus,
            multiappend=self._store.multiappend,
            max_size=caps.max_message_size,
            last_uid=0 if caps.uidplus else (await self.state()).uidnext - 1,
        )
        return await appender.run(items)

    async def set_flags(self, changes: Mapping[int, frozenset[str]]) -> None:
        groups: dict[frozenset[str], list[int]] = {}
        for uid, flags in changes.items():
            groups.setdefault(normalize_flags(flags), []).append(uid)

        async def go(s: ImapSession) -> None:
            for flags, uids in groups.items():
                for uid_set in _sets(uids):
                    store = c.StoreFlags(uid_set, tuple(sorted(flags)), silent=True, uid=True)
                    reply = await s.command(store)
                    if not reply.ok:
                        text = shown(reply.done.text)
                        raise FolderError(f"STORE in {self._name!r} failed: {text}")

        await self._client.in_folder(self._name, go)

    async def expunge(self, uids: Sequence[int]) -> None:
        if not uids:
            return
        uidplus = self._store.capabilities.uidplus

        async def go(s: ImapSession) -> None:
            for uid_set in _sets(uids):
                mark = c.StoreFlags(uid_set, ("\\Deleted",), c.StoreMode.ADD, silent=True, uid=True)
                reply = await s.command(mark)
                if not reply.ok:
                    raise FolderError(f"marking deleted failed: {shown(reply.done.text)}")
                reply = await s.command(c.UidExpunge(uid_set) if uidplus else c.Expunge())
                if not reply.ok:
                    raise FolderError(f"EXPUNGE in {self._name!r} failed: {shown(reply.done.text)}")

        await self._client.in_folder(self._name, go)

    async def move(self, uids: Sequence[int], target: str) -> dict[int, int]:
        """Move messages to ``target``; returns old UID -> new UID where the server says
        (COPYUID). Uses MOVE when offered, else COPY then expunge."""
        mapping: dict[int, int] = {}
        has_move = self._store.capabilities.move

        async def go(s: ImapSession) -> None:
            for uid_set in _sets(uids):
                cmd: c.Command = (
                    c.Move(uid_set, target, uid=True)
                    if has_move
                    else c.Copy(uid_set, target, uid=True)
                )
                reply = await s.command(cmd)
                if not reply.ok:
                    if missing_folder(reply) or "TRYCREATE" in repr(reply.done.code):
                        raise FolderNotFound(f"no folder {target!r}", folder=target)
                    raise FolderError(f"moving to {target!r} failed: {shown(reply.done.text)}")
                codes = [reply.done.code] + [getattr(r, "code", None) for r in reply.untagged]
                for code in codes:
                    if isinstance(code, CopyUidCode):
                        mapping.update(zip(code.source_uids, code.destination_uids, strict=False))

        await self._client.in_folder(self._name, go)
        if not has_move:
            await self.expunge(uids)
        return mapping
