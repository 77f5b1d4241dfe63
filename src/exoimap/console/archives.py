"""The mailboxes' archives as the console reads them: which mailboxes there are (the
accounts of config.toml that have an archive), their folders, a page of a folder's
messages (headers from each message's first bytes), and one message's bytes.

Each call opens the archive, reads, and closes it, so the console holds no archive lock
between requests (a sync that finds one held for that moment reports it and can be rerun;
a read during a sync is refused with :class:`~exoimap.errors.StoreLocked`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

from exoimap.app.accounts import archive_path
from exoimap.config import Paths, load_config
from exoimap.errors import MessageError
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import FetchedMessage, MessageInfo

__all__ = ["FolderSummary", "Mailbox", "MessagePage", "MessageSummary", "Mailboxes"]

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

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def header_text(message: EmailMessage, name: str) -> str:
    """A header decoded (RFC 2047), or its raw text when it does not decode."""
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):  # malformed structured headers
        raw = [v for k, v in message.raw_items() if k.lower() == name.lower()]
        return str(raw[0]) if raw else ""
    return "" if value is None else str(value)


class Mailboxes:
    """The archives of one exoimap installation."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def all(self) -> list[Mailbox]:
        """Every configured account whose archive exists, by account name."""
        config = load_config(self.paths)
        found = []
        for name, account in sorted(config.accounts.items()):
            root = archive_path(account, self.paths)
            if (root / "index.sqlite").is_file():
                found.append(Mailbox(name, account.email, root))
        return found

    def find(self, account: str) -> Mailbox | None:
        return next((m for m in self.all() if m.account == account), None)

    @asynccontextmanager
    async def _open(self, mailbox: Mailbox) -> AsyncIterator[ArchiveStore]:
        store = ArchiveStore.open(mailbox.archive, create=False)
        try:
            yield store
        finally:
            await store.close()

    async def folders(self, mailbox: Mailbox) -> list[FolderSummary]:
        async with self._open(mailbox) as store:
            found = []
            for info in sorted(await store.list_folders(), key=lambda i: i.name):
                if not info.selectable:
                    continue
                async with store.open_folder(info.name) as folder:
                    listing = await folder.list_messages()
                found.append(FolderSummary(info.name, len(listing.messages)))
            return found

    async def page(self, mailbox: Mailbox, folder_name: str, page: int) -> MessagePage | None:
        """Messages of a folder, newest first; None when there is no such folder."""
        async with self._open(mailbox) as store:
            names = {i.name for i in await store.list_folders() if i.selectable}
            if folder_name not in names:
                return None
            async with store.open_folder(folder_name) as folder:
                listing = await folder.list_messages(detail=True)
                infos = sorted(
                    listing.messages,
                    key=lambda m: (
                        m.internal_date or _dt.datetime.min.replace(tzinfo=_dt.UTC),
                        m.uid,
                    ),
                    reverse=True,
                )
                chosen = infos[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
                heads = await _heads(folder.fetch([m.uid for m in chosen]))
            summaries = [
                MessageSummary(
                    m.uid,
                    m.internal_date,
                    m.size,
                    header_text(heads[m.uid], "subject") if m.uid in heads else "",
                    header_text(heads[m.uid], "from") if m.uid in heads else "",
                )
                for m in chosen
            ]
            return MessagePage(folder_name, page, len(infos), summaries)

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
        """The bytes of one message; None when the folder or message does not exist."""
        async with self._open(mailbox) as store:
            names = {i.name for i in await store.list_folders() if i.selectable}
            if folder_name not in names:
                return None
            async with store.open_folder(folder_name) as folder:
                listing = await folder.list_messages(detail=True)
                info = next((m for m in listing.messages if m.uid == uid), None)
                if info is None or (info.size or 0) > MAX_SHOWN_BYTES:
                    return None
                parts: list[bytes] = []
                async for fetched in folder.fetch([uid]):
                    async for chunk in fetched.chunks:
                        parts.append(chunk)
                return b"".join(parts)


async def _heads(fetched: AsyncIterator[FetchedMessage]) -> dict[int, EmailMessage]:
    """The parsed headers of each fetched message (from its first chunk)."""
    parser = BytesHeaderParser(policy=policy.default)
    heads: dict[int, EmailMessage] = {}
    try:
        async for message in fetched:
            chunks = message.chunks
            first = await anext(chunks, b"")
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()
            parsed = parser.parsebytes(first[:_HEADER_BYTES])
            heads[message.uid] = parsed
    except MessageError:
        pass  # a message whose file is missing is listed without its headers
    return heads
