"""The mailboxes' archives as the console reads them: which mailboxes there are (the
accounts of config.toml that have an archive), their folders, a page of a folder's
messages (headers from each message's first bytes), and one message's bytes.

Each call opens the archive, reads, and closes it (skipping the index's integrity check
while the index is as this process left it), so the console holds the archive's lock only
for one page: its own requests for one archive take turns (an asyncio lock per archive),
and a sync starting meanwhile waits for the page to finish. While a sync holds the archive,
message lists come from the search index as last indexed (one consistent SQLite snapshot,
marked as such); what needs the message files is refused with
:class:`~exoimap.errors.StoreLocked` (the console answers 503).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from exoimap.app.accounts import archive_path
from exoimap.config import Paths, load_config
from exoimap.errors import ExoimapError, MessageError, StoreLocked
from exoimap.store.archive import ArchiveStore, IndexStamp
from exoimap.store.base import FetchedMessage, MessageInfo
from exoimap.store.search import (
    FolderMark,
    Reach,
    SearchIndex,
    header_text,
    index_path,
    update_search,
)
from exoimap.untrusted import shown

_log = logging.getLogger(__name__)

__all__ = [
    "FolderSummary",
    "Mailbox",
    "MessagePage",
    "MessageSummary",
    "Mailboxes",
    "header_text",
]

PAGE_SIZE = 50
#: A message larger than this is not shown in the console (download it instead).
MAX_SHOWN_BYTES = 25 * 1024 * 1024
_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Mailbox:
    account: str  # the configured account name (the URL names the mailbox by it)
    email: str
    archive: Path


@dataclass(frozen=True)
class FolderSummary:
    name: str
    messages: int


@dataclass(frozen=True)
class MessageSummary:
    uid: int
    date: _dt.datetime | None
    size: int | None
    subject: str
    sender: str


@dataclass(frozen=True)
class MessagePage:
    folder: str
    page: int
    total: int
    messages: list[MessageSummary]
    #: True when a sync holds the archive and the list is the search index's last view.
    behind: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


class Mailboxes:
    """The archives of one exoimap installation."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.search = SearchIndex(index_path(paths))
        # each archive's index as this process left it: while unchanged, opening it again
        # skips the integrity check (any write by a sync changes the stamp)
        self._stamps: dict[Path, IndexStamp | None] = {}
        self._turns: dict[Path, asyncio.Lock] = {}

    def all(self) -> list[Mailbox]:
        """Every configured account whose archive exists, by account name."""
        config = load_config(self.paths)
        found = []
        for name, account in sorted(config.accounts.items()):
            root = archive_path(account, self.paths)
            if (root / "index.sqlite").is_file():
                found.append(Mailbox(name, account.email, root))
        return found

    def configured(self, account: str) -> Mailbox | None:
        """The configured account ``account``, archived or not (a restore's target)."""
        found = load_config(self.paths).accounts.get(account)
        if found is None:
            return None
        return Mailbox(account, found.email, archive_path(found, self.paths))

    async def index_all(self, *, attempts: int = 30, pause: float = 1.0) -> int:
        """Bring the search index up to date with every archive, one at a time, as a sync
        would: what a console does at start, so archives backed up before it first ran can
        be searched and opened without waiting for their next sync. While an archive is
        indexed the console's pages of it read as during a sync (the index's last view);
        an archive that stays busy (``attempts`` tries, ``pause`` seconds apart) is left to
        its next sync, and a failure is logged and the next archive goes on. Returns the
        number of messages indexed."""
        try:
            mailboxes = self.all()
        except ExoimapError as exc:  # the config was made unreadable since the start
            _log.warning("search index: archives not indexed: %s", shown(str(exc)))
            return 0
        indexed = 0
        for mailbox in mailboxes:
            indexed += await self._index_one(mailbox, attempts, pause)
        return indexed

    async def _index_one(self, mailbox: Mailbox, attempts: int, pause: float) -> int:
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(pause)
            try:
                return await self._index_archive(mailbox)
            except StoreLocked:  # a sync (which indexes it too) or a page being served
                continue
            except ExoimapError as exc:
                _log.warning("search index: %s not indexed: %s", mailbox.account, shown(str(exc)))
                return 0
        return 0

    async def _index_archive(self, mailbox: Mailbox) -> int:
        store = ArchiveStore.open(mailbox.archive, create=False)
        try:
            done = await update_search(
                store, self.search, account=mailbox.account, mailbox=mailbox.email
            )
        finally:
            await store.close()
        if done.indexed:
            _log.info("search index: %s: %d messages indexed", mailbox.account, done.indexed)
        return done.indexed

    def find(self, account: str) -> Mailbox | None:
        return next((m for m in self.all() if m.account == account), None)

    @asynccontextmanager
    async def _open(self, mailbox: Mailbox) -> AsyncIterator[ArchiveStore]:
        async with self._turns.setdefault(mailbox.archive, asyncio.Lock()):
            trusted = self._stamps.get(mailbox.archive)
            store = ArchiveStore.open(mailbox.archive, create=False, trusted_index=trusted)
            try:
                yield store
            finally:
                await store.close()
                self._stamps[mailbox.archive] = store.closed_index_stamp

    async def folders(self, mailbox: Mailbox, within: Sequence[Reach] = ()) -> list[FolderSummary]:
        """``within``: as for :meth:`page` (a date window counts in the search index)."""
        async with self._open(mailbox) as store:
            names = sorted(i.name for i in await store.list_folders() if i.selectable)
            if _windowed(within):
                counted = await run_in_threadpool(
                    self.search.folder_counts, mailbox.account, within
                )
                return [FolderSummary(n, counted.get(n, 0)) for n in names]
            states = await store.folder_states(names)  # counted by the index
            return [FolderSummary(n, states[n].exists) for n in names if n in states]

    async def page(
        self, mailbox: Mailbox, folder_name: str, page: int, within: Sequence[Reach] = ()
    ) -> MessagePage | None:
        """``within``: the reaches of the person's scope; one with a date window lists
        from the search index alone (the window is part of its SQL)."""
        if _windowed(within):
            return await self._indexed(mailbox, folder_name, page, within, behind=False)
        try:
            return await self._page(mailbox, folder_name, page)
        except StoreLocked:  # a sync is writing: the index's last consistent view
            found = await self._indexed(mailbox, folder_name, page, None, behind=True)
            if found is None:
                raise
            return found

    async def _indexed(
        self,
        mailbox: Mailbox,
        folder_name: str,
        page: int,
        within: Sequence[Reach] | None,
        *,
        behind: bool,
    ) -> MessagePage | None:
        indexed = await run_in_threadpool(
            lambda: self.search.folder_page(
                mailbox.account, folder_name, None, page=page, size=PAGE_SIZE, within=within
            )
        )
        if indexed is None:
            return None
        shown = [MessageSummary(h.uid, h.date, h.size, h.subject, h.sender) for h in indexed.hits]
        return MessagePage(folder_name, page, indexed.total, shown, behind=behind)

    async def _page(self, mailbox: Mailbox, folder_name: str, page: int) -> MessagePage | None:
        """Messages of a folder, the most recently archived first (highest UID: the archive
        numbers messages as they arrive); None when there is no such folder. From the
        search index when it holds the folder as the archive has it now (one indexed query),
        else from the message files' first bytes."""
        async with self._open(mailbox) as store:
            names = {i.name for i in await store.list_folders() if i.selectable}
            if folder_name not in names:
                return None
            state = await store.folder_state(folder_name)
            mark = FolderMark(state.uidvalidity, state.uidnext, state.exists)
            indexed = await run_in_threadpool(
                self.search.folder_page,
                mailbox.account,
                folder_name,
                mark,
                page=page,
                size=PAGE_SIZE,
            )
            if indexed is not None:  # the search index holds the folder as it is now
                shown = [
                    MessageSummary(h.uid, h.date, h.size, h.subject, h.sender) for h in indexed.hits
                ]
                return MessagePage(folder_name, page, indexed.total, shown)
            async with store.open_folder(folder_name) as folder:
                listing = await folder.list_messages()
                uids = sorted((m.uid for m in listing.messages), reverse=True)
                chosen = uids[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
                summaries = await _summaries(folder.fetch(chosen))
            by_uid = {s.uid: s for s in summaries}
            shown = [by_uid.get(uid, MessageSummary(uid, None, None, "", "")) for uid in chosen]
            return MessagePage(folder_name, page, len(uids), shown)

    async def info(self, mailbox: Mailbox, folder_name: str, uid: int) -> MessageInfo | None:
        """What the index knows of one message; None when there is no such message."""
        async with self._open(mailbox) as store:
            names = {i.name for i in await store.list_folders() if i.selectable}
            if folder_name not in names:
                return None
            async with store.open_folder(folder_name) as folder:
                listing = await folder.list_messages(detail=True)
            return next((m for m in listing.messages if m.uid == uid), None)

    async def message(self, mailbox: Mailbox, folder_name: str, uid: int) -> bytes | None:
        """The bytes of one message; None when the folder or message does not exist (or
        its file is missing, or it is too large to show)."""
        async with self._open(mailbox) as store:
            names = {i.name for i in await store.list_folders() if i.selectable}
            if folder_name not in names:
                return None
            async with store.open_folder(folder_name) as folder:
                parts: list[bytes] = []
                try:
                    async for fetched in folder.fetch([uid]):  # the index finds the one UID
                        if fetched.size > MAX_SHOWN_BYTES:
                            return None
                        parts.extend([chunk async for chunk in fetched.chunks])
                except MessageError:
                    return None
                return b"".join(parts) if parts else None


def _windowed(within: Sequence[Reach]) -> bool:
    return any(r.after or r.before for r in within)


async def _summaries(fetched: AsyncIterator[FetchedMessage]) -> list[MessageSummary]:
    """Date, size, subject and sender of each fetched message (headers from its first
    chunk); a message whose file is missing ends the list there (shown without them)."""
    parser = BytesHeaderParser(policy=policy.default)
    found: list[MessageSummary] = []
    try:
        async for message in fetched:
            chunks = message.chunks
            first = await anext(chunks, b"")
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()
            head = parser.parsebytes(first[:_HEADER_BYTES])
            found.append(
                MessageSummary(
                    message.uid,
                    message.internal_date,
                    message.size,
                    header_text(head, "subject"),
                    header_text(head, "from"),
                )
            )
    except MessageError:
        pass
    return found
