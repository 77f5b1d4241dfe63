"""Verify an archive against its source and against its own files.

Shallow: every source folder has an archive folder, every source UID is stored (anchored),
no stored message claims a source UID that is gone without being marked gone, sizes agree
(when the source's sizes are exact), flags agree. Deep: also fetch every source message and
compare its SHA-256 with the recorded one. In both cases the archive's files are checked
against its index (missing, unindexed, wrong size; deep: re-hashed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from exoimap.store.archive import ArchiveStore, FileReport
from exoimap.store.base import Store
from exoimap.sync.plan import archive_name

__all__ = ["FolderCheck", "VerifyReport", "verify"]


@dataclass(slots=True)
class FolderCheck:
    """Differences found in one folder (lists of source UIDs)."""

    source: str
    archive: str
    checked: int = 0
    missing: list[int] = field(default_factory=list)
    not_marked_gone: list[int] = field(default_factory=list)
    size_mismatch: list[int] = field(default_factory=list)
    hash_mismatch: list[int] = field(default_factory=list)
    flag_mismatch: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.not_marked_gone
            or self.size_mismatch
            or self.hash_mismatch
            or self.flag_mismatch
        )


@dataclass(slots=True)
class VerifyReport:
    folders_missing: list[str] = field(default_factory=list)
    folders: list[FolderCheck] = field(default_factory=list)
    files: FileReport = field(default_factory=FileReport)

    @property
    def ok(self) -> bool:
        return not self.folders_missing and all(f.ok for f in self.folders) and self.files.ok


async def verify(source: Store, archive: ArchiveStore, *, deep: bool = False) -> VerifyReport:
    """Compare ``archive`` with ``source`` (``deep``: SHA-256 of every message)."""
    report = VerifyReport(files=await archive.verify_files(deep=deep))
    exact = source.capabilities.exact_sizes
    for info in await source.list_folders():
        if not info.selectable:
            continue
        name = archive_name(info.name, info.delimiter)
        if await archive.folder_record(name) is None:
            report.folders_missing.append(info.name)
            continue
        check = FolderCheck(source=info.name, archive=name)
        report.folders.append(check)
        async with source.open_folder(info.name) as source_folder:
            listing = await source_folder.list_messages(detail=True)
            uidvalidity = listing.state.uidvalidity
            async with archive.open_folder(name) as archive_folder:
                stored = (await archive_folder.list_messages(detail=True)).messages
            by_origin = {
                m.origin.uid: m
                for m in stored
                if m.origin is not None and m.origin.uidvalidity == uidvalidity
            }
            present = {m.uid for m in listing.messages}
            check.not_marked_gone = sorted(
                uid for uid, m in by_origin.items() if uid not in present and m.gone_at is None
            )
            for message in listing.messages:
                check.checked += 1
                mine = by_origin.get(message.uid)
                if mine is None:
                    check.missing.append(message.uid)
                    continue
                if exact and message.size is not None and message.size != mine.size:
                    check.size_mismatch.append(message.uid)
                if message.flags != mine.flags:
                    check.flag_mismatch.append(message.uid)
            if deep:
                wanted = sorted(u for u in present if u in by_origin)
                async for fetched in source_folder.fetch(wanted):
                    digest = hashlib.sha256()
                    async for chunk in fetched.chunks:
                        digest.update(chunk)
                    if digest.hexdigest() != by_origin[fetched.uid].sha256:
                        check.hash_mismatch.append(fetched.uid)
    return report
