"""Bringing the search index up to date with one archive: what ``sync`` runs after each
backup, while it still holds the archive.

The index is compared with the archive folder by folder (their counters first, so an
unchanged folder costs one row); new messages are read, parsed and indexed in batches,
messages no longer in the archive are forgotten, a folder made anew (another UIDVALIDITY)
or gone is indexed again or forgotten. Each batch is one transaction and a folder is marked
indexed only with its last batch, so an interrupted catch-up is finished by the next sync
and the index never claims more than it holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from exoimap.errors import MessageError
from exoimap.store.archive import ArchiveFolder, ArchiveStore
from exoimap.store.base import FetchedMessage, MessageInfo
from exoimap.store.search.documents import Document, read_document
from exoimap.store.search.index import FolderMark, SearchIndex

__all__ = ["CatchUp", "update_search"]

#: Messages read and indexed per transaction.
BATCH = 200
#: What is read of each message: its text comes first; the rest is attachments.
INDEXED_BYTES = 256 * 1024


@dataclass
class CatchUp:
    """What one catch-up did."""

    indexed: int = 0
    forgotten: int = 0
    unreadable: int = 0  # messages whose file could not be read (indexed by a later sync)


async def _head(fetched: FetchedMessage) -> bytes:
    """The first :data:`INDEXED_BYTES` of a message."""
    parts: list[bytes] = []
    size = 0
    chunks = fetched.chunks
    try:
        async for chunk in chunks:
            parts.append(chunk)
            size += len(chunk)
            if size >= INDEXED_BYTES:
                break
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    return b"".join(parts)[:INDEXED_BYTES]


async def _read(folder: ArchiveFolder, infos: Sequence[MessageInfo]) -> tuple[list[bytes], int]:
    """The first bytes of ``infos``' messages in order (b"" for one that cannot be read)."""
    found: dict[int, bytes] = {}
    try:
        async for fetched in folder.fetch([m.uid for m in infos]):
            found[fetched.uid] = await _head(fetched)
    except MessageError:  # a missing file ends the fetch there: the rest one by one
        for info in infos:
            if info.uid in found:
                continue
            try:
                async for fetched in folder.fetch([info.uid]):
                    found[fetched.uid] = await _head(fetched)
            except MessageError:
                continue
    return [found.get(m.uid, b"") for m in infos], sum(1 for m in infos if m.uid not in found)


def _documents(folder: str, infos: Sequence[MessageInfo], raws: Sequence[bytes]) -> list[Document]:
    return [
        read_document(raw, folder, info.uid, info.internal_date, info.size)
        for info, raw in zip(infos, raws, strict=True)
        if raw and info.internal_date is not None
    ]


@dataclass
class _Indexer:
    """Indexes one account's archive folders into ``index``."""

    index: SearchIndex
    account: str
    mailbox: str
    done: CatchUp

    async def folder(self, archive: ArchiveStore, name: str, mark: FolderMark) -> None:
        async with archive.open_folder(name) as folder:
            listing = await folder.list_messages(detail=True)
            present = {m.uid: m for m in listing.messages}
            have = await asyncio.to_thread(self.index.uids, self.account, name)
            remove = sorted(have - present.keys())
            new = [present[uid] for uid in sorted(present.keys() - have)]
            complete = True
            batches = [new[i : i + BATCH] for i in range(0, len(new), BATCH)] or [[]]
            for number, batch in enumerate(batches):
                raws, unreadable = await _read(folder, batch)
                complete = complete and not unreadable
                docs = await asyncio.to_thread(_documents, name, batch, raws)
                last = number == len(batches) - 1
                await asyncio.to_thread(
                    self.index.update_folder,
                    self.account,
                    self.mailbox,
                    name,
                    add=docs,
                    remove=remove if number == 0 else (),
                    mark=mark if last and complete else None,
                )
                self.done.indexed += len(docs)
                self.done.unreadable += unreadable
            self.done.forgotten += len(remove)


async def update_search(
    archive: ArchiveStore, index: SearchIndex, *, account: str, mailbox: str
) -> CatchUp:
    """Make ``index`` hold what ``archive`` (the archive of ``account``, the mailbox with
    address ``mailbox``) holds now."""
    indexer = _Indexer(index, account, mailbox, CatchUp())
    marks = await asyncio.to_thread(index.marks, account)
    names = [f.name for f in await archive.list_folders() if f.selectable]
    states = await archive.folder_states(names)
    for gone in sorted(set(marks) - set(states)):
        await asyncio.to_thread(index.drop_folder, account, gone)
    for name, state in sorted(states.items()):
        now = FolderMark(state.uidvalidity, state.uidnext, state.exists)
        before = marks.get(name)
        if before == now:
            continue
        if before is not None and before.uidvalidity != now.uidvalidity:
            await asyncio.to_thread(index.drop_folder, account, name)
        await indexer.folder(archive, name, now)
    return indexer.done
