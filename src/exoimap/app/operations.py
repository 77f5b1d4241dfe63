"""Operations on open stores: back up, plan (dry run), verify (and repair). What the account-level
service (:mod:`exoimap.app.accounts`), the agent, the console and the tenant workers call
once they hold the stores; each is the one sync engine with the right sync state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exoimap.store.archive import ArchiveStore, FileReport
from exoimap.store.base import Store
from exoimap.store.memory import MemoryStore
from exoimap.store.sync_state import MemorySyncState
from exoimap.sync.engine import sync
from exoimap.sync.plan import SyncPolicy
from exoimap.sync.repair import repair
from exoimap.sync.report import EventHook, FolderReport, ProgressCallback, SyncReport
from exoimap.sync.verify import FolderCheck, VerifyReport, verify

__all__ = ["ArchiveCheck", "backup", "plan_backup", "verify_archive"]


async def backup(
    source: Store,
    archive: ArchiveStore,
    policy: SyncPolicy | None = None,
    *,
    progress: ProgressCallback | None = None,
    events: EventHook | None = None,
) -> SyncReport:
    """Back up every folder of ``source`` into ``archive`` (the archive remembers the
    pair in its own index)."""
    return await sync(
        source, archive, archive.sync_state(), policy, progress=progress, events=events
    )


async def plan_backup(
    source: Store, archive: ArchiveStore | None, policy: SyncPolicy | None = None
) -> SyncReport:
    """What :func:`backup` would do, changing nothing (``archive`` None: a first backup,
    planned against an empty target)."""
    if archive is None:
        return await sync(source, MemoryStore(), MemorySyncState(), policy, plan_only=True)
    return await sync(source, archive, archive.sync_state(), policy, plan_only=True)


@dataclass(slots=True)
class ArchiveCheck:
    """An archive compared with its source (:attr:`sync`) and with its own files."""

    sync: VerifyReport
    files: FileReport = field(default_factory=FileReport)
    #: With ``repair``: the sync that fetched again what differed (``None``: nothing to do).
    repaired: SyncReport | None = None

    @property
    def folders(self) -> list[FolderCheck]:
        return self.sync.folders

    @property
    def folders_missing(self) -> list[str]:
        return self.sync.folders_missing

    @property
    def ok(self) -> bool:
        """Nothing differed (before any repair)."""
        return self.sync.ok and self.files.ok

    @property
    def ok_after_repair(self) -> bool:
        """Nothing differed, or the repair fetched it all again (files outside the index
        are left for the user to look at)."""
        if self.ok:
            return True
        return self.repaired is not None and self.repaired.ok and not self.files.unindexed


async def verify_archive(
    source: Store,
    archive: ArchiveStore,
    *,
    deep: bool = False,
    repair_it: bool = False,
    events: EventHook | None = None,
) -> ArchiveCheck:
    """Compare ``archive`` with ``source`` and with its own files (``deep``: SHA-256 of
    every message, on both sides); with ``repair_it`` fetch again what differs (the old
    copies are kept, marked gone) and what is missing or damaged."""
    files = await archive.verify_files(deep=deep)
    check = ArchiveCheck(
        sync=await verify(source, archive, archive.sync_state(), deep=deep), files=files
    )
    if repair_it:
        check.repaired = await _repair(source, archive, check, events)
    return check


async def _repair(
    source: Store, archive: ArchiveStore, check: ArchiveCheck, events: EventHook | None
) -> SyncReport | None:
    """Move damaged files aside (into ``damaged/``; a missing file the sync notices
    itself), then fetch again what differs or is missing in the folders concerned."""
    damaged: dict[str, list[int]] = {}
    for folder, uid in check.files.corrupt:
        damaged.setdefault(folder, []).append(uid)
    for folder, uids in damaged.items():
        async with archive.open_folder(folder) as opened:
            await opened.set_aside_damaged(uids)
    touched = set(damaged) | {folder for folder, _uid in check.files.missing}
    also = [f.source for f in check.folders if f.target in touched]
    return await repair(source, archive, archive.sync_state(), check.sync, also=also, events=events)


def planned_folders(report: SyncReport) -> list[FolderReport]:
    """The folders a dry run would touch."""
    return [
        f
        for f in report.folders
        if f.planned or f.flags_changed or f.gone or f.expunged or f.new_folder or f.rematched
    ]
