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
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager

from exoimap.errors import FolderError, FolderNotFound, MessageError
from exoimap.net.credentials import Credentials
from exoimap.net.imap import ImapClient, RetryPolicy, mailbox_status, parse_internal_date
from exoimap.net.session import Endpoint, EventSink, ImapSession, Reply
from exoimap.protocol import commands as c
from exoimap.protocol.commands import format_internal_date
from exoimap.protocol.types import (
    AppendUidCode,
    CopyUidCode,
    FetchResponse,
    ListResponse,
    SearchResponse,
    SequenceSet,
    SimpleCode,
    StatusData,
)
from exoimap.store.base import (
    AppendItem,
    Capabilities,
    FetchedMessage,
    FolderInfo,
    FolderState,
    MessageInfo,
    MessageListing,
    SpecialUse,
    is_inbox,
    normalize_flags,
)

__all__ = ["RemoteFolder", "RemoteImapStore"]

_ROLES = {
    "\\sent": SpecialUse.SENT,
    "\\drafts": SpecialUse.DRAFTS,
    "\\trash": SpecialUse.TRASH,
    "\\junk": SpecialUse.JUNK,
    "\\archive": SpecialUse.ARCHIVE,
}
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE | re.DOTALL)
_APPEND_WINDOW = 8
_STORE_BATCH = 500


def _sets(uids: Sequence[int]) -> list[SequenceSet]:
    ordered = sorted(set(uids))
    return [
        SequenceSet.of(*ordered[i : i + _STORE_BATCH]) for i in range(0, len(ordered), _STORE_BATCH)
    ]


def _missing(reply: Reply) -> bool:
    code = reply.done.code
    text = reply.done.text.lower()
    return (isinstance(code, SimpleCode) and code.name == "NONEXISTENT") or (
        "doesn't exist" in text or "not exist" in text or "unknown mailbox" in text
    )


def _message_id(header: bytes | None) -> str | None:
    if not header:
        return None
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", header)
    m = _MESSAGE_ID.search(unfolded)
    if m is None:
        return None
    value = m.group(1).strip()
    return value.decode("utf-8", "replace") or None


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

    async def close(self) -> None:
        clients, self._all, self._idle = self._all, [], []
        for client in clients:
            await client.close()


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
    ) -> None:
        def factory() -> ImapClient:
            return ImapClient(
                endpoint,
                credentials,
                retry=retry,
                on_event=on_event,
                account=account,
                enable=("CONDSTORE",),  # only sent where offered (not on Exchange)
            )

        self._pool = _Pool(factory, max(1, max_connections))
        self._max_connections = max(1, max_connections)
        self._caps: Capabilities = Capabilities()
        self._delimiter = "/"
        self.exchange = False

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
    ) -> RemoteImapStore:
        """Sign in once, learn the server's capabilities and hierarchy delimiter."""
        store = cls(
            endpoint,
            credentials,
            max_connections=max_connections,
            retry=retry,
            on_event=on_event,
            account=account,
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
            caps = client.capabilities
            self.exchange = client.exchange
            for response in listing.untagged:
                if isinstance(response, ListResponse) and response.delimiter:
                    self._delimiter = response.delimiter
            permanent = mailbox_status("INBOX", inbox, True).permanent_flags
            condstore = "CONDSTORE" in caps
            self._caps = Capabilities(
                condstore=condstore,
                qresync=False,  # VANISHED needs QRESYNC SELECT parameters we do not send yet
                uidplus="UIDPLUS" in caps,
                move="MOVE" in caps,
                custom_keywords="\\*" in permanent,
                permanent_flags=normalize_flags(
                    [f for f in permanent if f != "\\*"] or ["\\Seen", "\\Answered"]
                ),
                exact_sizes=not self.exchange,
                max_connections=self._max_connections,
                max_message_size=150 * 1024 * 1024 if self.exchange else None,
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
            raise FolderError(f"LIST failed: {reply.done.text}")
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
            return await _status(client, name, self._caps.condstore)

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
        if not reply.ok and _missing(reply):
            raise FolderNotFound(f"no folder {name!r}", folder=name)
        if not reply.ok:
            raise FolderError(f"{what} {name!r} failed: {reply.done.text}", folder=name)
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

    async def close(self) -> None:
        await self._pool.close()


async def _status(client: ImapClient, name: str, condstore: bool) -> FolderState:
    items = ("MESSAGES", "UIDNEXT", "UIDVALIDITY") + (("HIGHESTMODSEQ",) if condstore else ())
    canonical = "INBOX" if is_inbox(name) else name

    async def go(s: ImapSession) -> Reply:
        return await s.command(c.StatusCommand(canonical, items))

    reply = await client.run(go)
    if not reply.ok:
        if _missing(reply) or "NONEXISTENT" in repr(reply.done.code):
            raise FolderNotFound(f"no folder {name!r}", folder=name)
        raise FolderError(f"STATUS {name!r} failed: {reply.done.text}", folder=name)
    for r in reply.untagged:
        if isinstance(r, StatusData):
            return FolderState(
                name=canonical,
                uidvalidity=r.get("UIDVALIDITY") or 0,
                uidnext=r.get("UIDNEXT") or 1,
                exists=r.get("MESSAGES") or 0,
                highest_modseq=r.get("HIGHESTMODSEQ") if condstore else None,
            )
    raise FolderError(f"STATUS {name!r} gave no data", folder=name)


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
        return await _status(self._client, self._name, self._store.capabilities.condstore)

    async def list_messages(
        self, *, changed_since: int | None = None, detail: bool = False
    ) -> MessageListing:
        caps = self._store.capabilities
        state = await self.state()
        since = changed_since if caps.condstore else None
        if state.exists == 0:
            return MessageListing(state, [], complete=since is None, vanished=None)
        items: list[c.FetchItem] = ["UID", "FLAGS"]
        if caps.condstore:
            items.append("MODSEQ")
        if detail:
            items += ["RFC822.SIZE", "INTERNALDATE"]
            items.append(c.BodySection("HEADER.FIELDS (MESSAGE-ID)", peek=True))
        command = c.Fetch(SequenceSet.all(), tuple(items), uid=True, changed_since=since)

        async def go(s: ImapSession) -> Reply:
            reply = await s.command(command)
            if not reply.ok:
                raise FolderError(f"listing {self._name!r} failed: {reply.done.text}")
            return reply

        reply = await self._client.in_folder(self._name, go)
        messages: list[MessageInfo] = []
        for r in reply.untagged:
            if not isinstance(r, FetchResponse) or r.uid is None:
                continue
            header = r.bodies[0].data if detail and r.bodies else None
            messages.append(
                MessageInfo(
                    uid=r.uid,
                    flags=normalize_flags(r.flags or ()),
                    size=r.rfc822_size if detail else None,
                    internal_date=(
                        parse_internal_date(r.internal_date) if detail and r.internal_date else None
                    ),
                    message_id=_message_id(header) if detail else None,
                    modseq=r.modseq,
                )
            )
        messages.sort(key=lambda m: m.uid)
        return MessageListing(state, messages, complete=since is None, vanished=None)

    async def fetch(self, uids: Sequence[int]) -> AsyncIterator[FetchedMessage]:
        async for body in self._client.fetch(self._name, uids):
            yield FetchedMessage(
                uid=body.uid,
                flags=normalize_flags(body.flags),
                internal_date=body.internal_date,
                size=body.size,
                chunks=body.chunks,
            )

    async def append(self, items: AsyncIterable[AppendItem]) -> list[int]:
        """APPEND each item (pipelined, several in flight) and return the new UIDs."""
        session = await self._client.session()
        caps = self._store.capabilities
        before = await self.state() if not caps.uidplus else None
        tags: list[tuple[str, AppendItem]] = []
        uids: list[int] = []

        async def settle(limit: int) -> None:
            while len(tags) > limit:
                tag, item = tags.pop(0)
                reply = await session.wait(tag)
                session.check_throttle(reply)
                if not reply.ok:
                    raise MessageError(
                        f"APPEND to {self._name!r} failed: {reply.done.text}",
                        folder=self._name,
                        retryable=False,
                    )
                code = reply.done.code
                if isinstance(code, AppendUidCode):
                    uids.extend(code.uids)
                else:
                    uids.append(await self._find_uid(session, item, before))

        async for item in items:
            flags = tuple(sorted(f for f in item.flags if f.lower() != "\\recent"))
            date = format_internal_date(item.internal_date) if item.internal_date else None
            command = c.Append(self._name, None, flags, date, item.size)
            tags.append((await session.send_append(command, item.chunks), item))
            await settle(_APPEND_WINDOW)
        await settle(0)
        return uids

    async def _find_uid(
        self, session: ImapSession, item: AppendItem, before: FolderState | None
    ) -> int:
        """Without UIDPLUS: the new message's UID by searching above the old UIDNEXT."""
        start = before.uidnext if before is not None else 1
        criteria: tuple[c.SearchKey, ...] = ("UID", f"{start}:*")
        if item.message_id:
            criteria += ("HEADER", "Message-ID", item.message_id)
        reply = await session.command(c.Search(criteria, uid=True))
        found = [n for r in reply.untagged if isinstance(r, SearchResponse) for n in r.numbers]
        found = [n for n in found if n >= start]
        if not found:
            raise MessageError(
                f"the server stored a message in {self._name!r} but its UID could not be found",
                folder=self._name,
            )
        return max(found)

    async def set_flags(self, changes: Mapping[int, frozenset[str]]) -> None:
        groups: dict[frozenset[str], list[int]] = {}
        for uid, flags in changes.items():
            groups.setdefault(normalize_flags(flags), []).append(uid)

        async def go(s: ImapSession) -> None:
            for flags, uids in groups.items():
                for uid_set in _sets(uids):
                    store = c.Store(uid_set, tuple(sorted(flags)), silent=True, uid=True)
                    reply = await s.command(store)
                    if not reply.ok:
                        raise FolderError(f"STORE in {self._name!r} failed: {reply.done.text}")

        await self._client.in_folder(self._name, go)

    async def expunge(self, uids: Sequence[int]) -> None:
        if not uids:
            return
        uidplus = self._store.capabilities.uidplus

        async def go(s: ImapSession) -> None:
            for uid_set in _sets(uids):
                mark = c.Store(uid_set, ("\\Deleted",), c.StoreMode.ADD, silent=True, uid=True)
                reply = await s.command(mark)
                if not reply.ok:
                    raise FolderError(f"marking deleted failed: {reply.done.text}")
                reply = await s.command(c.UidExpunge(uid_set) if uidplus else c.Expunge())
                if not reply.ok:
                    raise FolderError(f"EXPUNGE in {self._name!r} failed: {reply.done.text}")

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
                    if _missing(reply) or "TRYCREATE" in repr(reply.done.code):
                        raise FolderNotFound(f"no folder {target!r}", folder=target)
                    raise FolderError(f"moving to {target!r} failed: {reply.done.text}")
                codes = [reply.done.code] + [getattr(r, "code", None) for r in reply.untagged]
                for code in codes:
                    if isinstance(code, CopyUidCode):
                        mapping.update(zip(code.source_uids, code.destination_uids, strict=False))

        await self._client.in_folder(self._name, go)
        if not has_move:
            await self.expunge(uids)
        return mapping
