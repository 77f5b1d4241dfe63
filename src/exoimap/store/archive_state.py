"""The archive's :class:`~exoimap.store.base.SyncState`: kept in its index, atomically
with the messages (the origin of each message is committed with it)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from exoimap.store.base import Folder, FolderSyncRecord, MessageInfo, MessageRef
from exoimap.store.run_journal import RunJournal

if TYPE_CHECKING:
    from exoimap.store.archive import ArchiveStore

__all__ = ["ArchiveSyncState"]


class ArchiveSyncState:
    def __init__(self, store: ArchiveStore) -> None:
        self._store = store
        self._journal = RunJournal(store.root / "runs", durable=False)

    async def begin_run(self, detail: Mapping[str, object]) -> list[str]:
        notes = list(self._store.recovery_notes)
        for earlier in self._journal.begin(dict(detail)):
            notes.append(
                f"the previous run {earlier.get('run')} (pid {earlier.get('pid')}) was "
                "interrupted; this run goes on from what it stored"
            )
        return notes

    async def end_run(self, summary: Mapping[str, object]) -> None:
        self._journal.finish(dict(summary))

    async def folders(self) -> list[FolderSyncRecord]:
        return [
            FolderSyncRecord(
                name=r.name,
                source_uidvalidity=r.source_uidvalidity,
                source_uidnext=r.source_uidnext,
                source_modseq=r.source_modseq,
                gone_at=_dt.datetime.fromisoformat(r.gone_at) if r.gone_at else None,
            )
            for r in self._store.folder_records()
        ]

    async def folder_synced(
        self, name: str, *, uidvalidity: int, uidnext: int, modseq: int | None
    ) -> None:
        await self._store.set_folder_source(
            name, uidvalidity=uidvalidity, uidnext=uidnext, modseq=modseq
        )

    async def folder_gone(self, name: str, when: _dt.datetime) -> None:
        await self._store.mark_folder_gone(name, when)

    async def folder_renamed(self, old: str, new: str) -> None:
        return None

    async def folder_deleted(self, name: str) -> None:
        return None

    async def messages(self, folder: Folder, *, detail: bool = False) -> list[MessageInfo]:
        return (await folder.list_messages(detail=detail)).messages

    async def appended(self, folder: str, origins: Mapping[int, MessageRef]) -> None:
        return None

    async def set_origins(self, folder: str, origins: Mapping[int, MessageRef]) -> None:
        async with self._store.open_folder(folder) as opened:
            await opened.set_origins(origins)

    async def mark_gone(self, folder: str, uids: Sequence[int], when: _dt.datetime) -> None:
        async with self._store.open_folder(folder) as opened:
            await opened.mark_gone(uids, when)

    async def forget(self, folder: str, uids: Sequence[int]) -> None:
        async with self._store.open_folder(folder) as opened:
            await opened.forget(uids)

    async def content_lost(self, folder: str) -> list[int]:
        async with self._store.open_folder(folder) as opened:
            return opened.missing_files()

    async def content_unchanged(self, name: str) -> bool:
        record = self._store.folder_record(name)
        return record is not None and self._store.files_unchanged(record)

    async def content_checked(self, names: Sequence[str]) -> None:
        await self._store.record_files_checked(names)
