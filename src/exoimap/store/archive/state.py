"""The archive's :class:`~exoimap.store.base.SyncState`: what a sync into the archive
remembers, kept in the archive's own index.

The archive stores each message's origin atomically with the message (it has
``records_origin``), the source folder's counters in its folder rows, and detects files
deleted by hand with one directory listing (or none, while the folder's files stamp holds).
:class:`ArchiveSyncState` maps the protocol onto the archive's public operations
(:class:`ArchiveOperations`, which :class:`~exoimap.store.archive.store.ArchiveStore`
implements): ``ArchiveStore.sync_state()`` gives one.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from exoimap.store.archive.index import FolderRow
from exoimap.store.base import Folder, FolderSyncRecord, MessageInfo, MessageRef, UidRange

__all__ = ["ArchiveFolderOperations", "ArchiveOperations", "ArchiveSyncState"]


class ArchiveFolderOperations(Protocol):
    """What the sync state uses of an open archive folder."""

    async def set_origins(self, origins: Mapping[int, MessageRef]) -> None: ...

    async def mark_gone(self, uids: Sequence[int], when: _dt.datetime) -> None: ...

    async def forget(self, uids: Sequence[int]) -> None: ...

    async def supersede(self, uids: Sequence[int], when: _dt.datetime) -> None: ...

    async def missing_files(self) -> list[int]: ...

    async def anchored(
        self, source_uidvalidity: int, origins: UidRange, *, detail: bool, size_and_date: bool
    ) -> list[MessageInfo]: ...

    async def has_unanchored(self, source_uidvalidity: int) -> bool: ...


class ArchiveOperations(Protocol):
    """What the sync state uses of the archive."""

    @property
    def recovery_notes(self) -> list[str]: ...

    def open_folder(self, name: str) -> AbstractAsyncContextManager[ArchiveFolderOperations]: ...

    async def folder_records(self) -> list[FolderRow]: ...

    async def set_folder_source(
        self, name: str, *, uidvalidity: int, uidnext: int, modseq: int | None
    ) -> None: ...

    async def mark_folder_gone(self, name: str, when: _dt.datetime) -> None: ...

    async def files_unchanged(self, names: Sequence[str]) -> set[str]: ...

    async def record_files_checked(self, names: Sequence[str]) -> int: ...

    async def begin_run(self, detail: Mapping[str, object]) -> list[dict[str, Any]]: ...

    async def end_run(self, summary: Mapping[str, object]) -> None: ...


class ArchiveSyncState:
    """:class:`~exoimap.store.base.SyncState` of a sync whose target is the archive."""

    def __init__(self, archive: ArchiveOperations) -> None:
        self._archive = archive

    async def begin_run(self, detail: Mapping[str, object]) -> list[str]:
        """Records the run in the archive's run journal; returns what recovery did when the
        archive was opened and which earlier runs were interrupted."""
        interrupted = await self._archive.begin_run(detail)
        notes = list(self._archive.recovery_notes)
        notes += [
            f"the previous run {run.get('run')} (pid {run.get('pid')}) was interrupted; "
            "this run continues where it stopped"
            for run in interrupted
        ]
        return notes

    async def end_run(self, summary: Mapping[str, object]) -> None:
        await self._archive.end_run(summary)

    async def folders(self) -> list[FolderSyncRecord]:
        return [
            FolderSyncRecord(
                name=row.name,
                source_uidvalidity=row.source_uidvalidity,
                source_uidnext=row.source_uidnext,
                source_modseq=row.source_modseq,
                gone_at=_dt.datetime.fromisoformat(row.gone_at) if row.gone_at else None,
            )
            for row in await self._archive.folder_records()
        ]

    async def folder_synced(
        self, name: str, *, uidvalidity: int, uidnext: int, modseq: int | None
    ) -> None:
        await self._archive.set_folder_source(
            name, uidvalidity=uidvalidity, uidnext=uidnext, modseq=modseq
        )

    async def folder_gone(self, name: str, when: _dt.datetime) -> None:
        await self._archive.mark_folder_gone(name, when)

    async def folder_renamed(self, old: str, new: str) -> None:
        """Nothing to do: the archive's own rename moved the folder's index rows."""

    async def folder_deleted(self, name: str) -> None:
        """Nothing to do: the archive's own delete removed the folder's index rows."""

    async def messages(
        self, folder: Folder, *, detail: bool = False, size_and_date: bool = False
    ) -> list[MessageInfo]:
        """The archive folder's own listing: origins and gone markers are in its index."""
        return (await folder.list_messages(detail=detail, size_and_date=size_and_date)).messages

    async def anchored_messages(
        self,
        folder: Folder,
        source_uidvalidity: int,
        uids: UidRange,
        *,
        detail: bool = False,
        size_and_date: bool = False,
    ) -> list[MessageInfo]:
        """:class:`~exoimap.store.base.WindowedState`: one range of origins, from the
        index's origin key."""
        async with self._archive.open_folder(folder.name) as opened:
            return await opened.anchored(
                source_uidvalidity, uids, detail=detail, size_and_date=size_and_date
            )

    async def has_unanchored(self, folder: Folder, source_uidvalidity: int) -> bool:
        async with self._archive.open_folder(folder.name) as opened:
            return await opened.has_unanchored(source_uidvalidity)

    async def will_append(
        self, folder: str, uidnext: int, source_uidvalidity: int, messages: Sequence[MessageInfo]
    ) -> None:
        """Never asked: the archive records origins itself (``records_origin``)."""

    async def appended(self, folder: str, origins: Mapping[int, MessageRef]) -> None:
        """Nothing to do: the archive stored the origins atomically with the messages."""

    async def set_origins(self, folder: str, origins: Mapping[int, MessageRef]) -> None:
        async with self._archive.open_folder(folder) as opened:
            await opened.set_origins(origins)

    async def mark_gone(self, folder: str, uids: Sequence[int], when: _dt.datetime) -> None:
        async with self._archive.open_folder(folder) as opened:
            await opened.mark_gone(uids, when)

    async def forget(self, folder: str, uids: Sequence[int]) -> None:
        async with self._archive.open_folder(folder) as opened:
            await opened.forget(uids)

    async def content_replaced(self, folder: str, uids: Sequence[int], when: _dt.datetime) -> None:
        """The old copies stay in the archive, marked gone and ``superseded`` in the index."""
        async with self._archive.open_folder(folder) as opened:
            await opened.supersede(uids, when)

    async def content_lost(self, folder: str) -> list[int]:
        """UIDs whose message file is missing from the folder (one directory listing)."""
        async with self._archive.open_folder(folder) as opened:
            return await opened.missing_files()

    async def content_unchanged(self, names: Sequence[str]) -> set[str]:
        return await self._archive.files_unchanged(names)

    async def content_checked(self, names: Sequence[str]) -> None:
        await self._archive.record_files_checked(names)
