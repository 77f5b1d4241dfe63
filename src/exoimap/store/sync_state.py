"""A :class:`~exoimap.store.base.SyncState` kept in memory, for any target store.

The archive keeps its sync state in its own index, atomically with the messages. Any other
target (a mailbox for a restore or a migration, the in-memory store in tests) can use this
one: per target folder the source counters and the gone mark, per target message its
origin and gone mark. It lives as long as the object (issue 16 persists it for restores);
:meth:`MemorySyncState.snapshot` shows what it holds.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from exoimap.store.base import Folder, FolderSyncRecord, MessageInfo, MessageRef

__all__ = ["MemorySyncState"]


@dataclass(slots=True)
class _FolderMemory:
    record: FolderSyncRecord
    origins: dict[int, MessageRef] = field(default_factory=dict)
    gone: dict[int, _dt.datetime] = field(default_factory=dict)
    #: The target folder's UIDVALIDITY the UIDs above belong to.
    target_uidvalidity: int | None = None


class MemorySyncState:
    """What a sync remembers about one source -> target pair, in memory."""

    def __init__(self, delimiter: str = "/") -> None:
        #: The target's hierarchy delimiter (children follow a renamed folder).
        self.delimiter = delimiter
        self._folders: dict[str, _FolderMemory] = {}
        # the target UIDVALIDITY each folder was last listed with (a cache, not state)
        self._listed_uidvalidity: dict[str, int] = {}
        #: How many runs began and ended (tests check a dry run starts none).
        self.runs_begun = 0
        self.runs_ended = 0

    def _folder(self, name: str) -> _FolderMemory:
        memory = self._folders.get(name)
        if memory is None:
            memory = self._folders[name] = _FolderMemory(FolderSyncRecord(name))
        return memory

    def _writable(self, name: str) -> _FolderMemory:
        """The memory of folder ``name``, emptied first if the target's UIDVALIDITY changed
        since its UIDs were recorded (every old UID is void then)."""
        memory = self._folder(name)
        listed = self._listed_uidvalidity.get(name)
        if listed is not None and memory.target_uidvalidity != listed:
            memory.origins.clear()
            memory.gone.clear()
            memory.target_uidvalidity = listed
        return memory

    def snapshot(self) -> dict[str, dict[int, MessageRef]]:
        """Target folder -> target UID -> origin, as now recorded."""
        return {name: dict(memory.origins) for name, memory in self._folders.items()}

    async def begin_run(self, detail: Mapping[str, object]) -> list[str]:
        self.runs_begun += 1
        return []

    async def end_run(self, summary: Mapping[str, object]) -> None:
        self.runs_ended += 1

    async def folders(self) -> list[FolderSyncRecord]:
        return [memory.record for memory in self._folders.values()]

    async def folder_synced(
        self, name: str, *, uidvalidity: int, uidnext: int, modseq: int | None
    ) -> None:
        memory = self._folder(name)
        memory.record = replace(
            memory.record,
            source_uidvalidity=uidvalidity,
            source_uidnext=uidnext,
            source_modseq=modseq,
            gone_at=None,
        )

    async def folder_gone(self, name: str, when: _dt.datetime) -> None:
        memory = self._folder(name)
        if memory.record.gone_at is None:
            memory.record = replace(memory.record, gone_at=when)

    async def folder_renamed(self, old: str, new: str) -> None:
        prefix = old + self.delimiter
        for name in [n for n in self._folders if n == old or n.startswith(prefix)]:
            memory = self._folders.pop(name)
            renamed = new + name[len(old) :]
            memory.record = replace(memory.record, name=renamed)
            self._folders[renamed] = memory

    async def folder_deleted(self, name: str) -> None:
        self._folders.pop(name, None)

    async def messages(
        self, folder: Folder, *, detail: bool = False, size_and_date: bool = False
    ) -> list[MessageInfo]:
        listing = await folder.list_messages(detail=detail, size_and_date=size_and_date)
        uidvalidity = listing.state.uidvalidity
        self._listed_uidvalidity[folder.name] = uidvalidity
        memory = self._folders.get(folder.name)
        if memory is None or memory.target_uidvalidity not in (None, uidvalidity):
            return listing.messages  # nothing known of these UIDs (a new UIDVALIDITY)
        for message in listing.messages:
            message.origin = memory.origins.get(message.uid)
            message.gone_at = memory.gone.get(message.uid)
        return listing.messages

    async def will_append(
        self, folder: str, uidnext: int, source_uidvalidity: int, messages: Sequence[MessageInfo]
    ) -> None:
        return None  # nothing survives a crash here anyway

    async def appended(self, folder: str, origins: Mapping[int, MessageRef]) -> None:
        self._writable(folder).origins.update(origins)

    async def set_origins(self, folder: str, origins: Mapping[int, MessageRef]) -> None:
        memory = self._writable(folder)
        memory.origins.update(origins)
        for uid in origins:
            memory.gone.pop(uid, None)

    async def mark_gone(self, folder: str, uids: Sequence[int], when: _dt.datetime) -> None:
        gone = self._writable(folder).gone
        for uid in uids:
            gone.setdefault(uid, when)

    async def forget(self, folder: str, uids: Sequence[int]) -> None:
        memory = self._writable(folder)
        for uid in uids:
            memory.origins.pop(uid, None)
            memory.gone.pop(uid, None)

    async def content_replaced(self, folder: str, uids: Sequence[int], when: _dt.datetime) -> None:
        memory = self._writable(folder)
        for uid in uids:
            memory.origins.pop(uid, None)
            memory.gone.setdefault(uid, when)

    async def content_lost(self, folder: str) -> list[int]:
        return []  # a store's content cannot go missing behind its own back

    async def content_unchanged(self, names: Sequence[str]) -> set[str]:
        return set()  # no way to tell cheaply: folders are always listed

    async def content_checked(self, names: Sequence[str]) -> None:
        return None
