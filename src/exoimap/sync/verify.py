"""Verify a target against its source, through the sync state.

Shallow: every source folder has a target folder, every source UID is stored (anchored),
no stored message claims a source UID that is gone without being marked gone, sizes agree
(when both sides' sizes are exact), flags agree (on what the target can keep). Deep: also
fetch every source message and compare its SHA-256 with the stored one's (from the target's
listing where it records hashes, the archive; else fetched from the target too). How a
target checks its own files is the target's business (``ArchiveStore.verify_files``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from exoimap.store.base import FetchedMessage, Folder, MessageInfo, Store, SyncState
from exoimap.sync.plan import target_name

__all__ = ["FolderCheck", "VerifyReport", "verify"]


@dataclass(slots=True)
class FolderCheck:
    """Differences found in one folder (lists of source UIDs)."""

    source: str
    target: str
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

    @property
    def ok(self) -> bool:
        return not self.folders_missing and all(f.ok for f in self.folders)


async def verify(
    source: Store, target: Store, state: SyncState, *, deep: bool = False
) -> VerifyReport:
    """Compare ``target`` with ``source`` (``deep``: SHA-256 of every message)."""
    report = VerifyReport()
    existing = {info.name for info in await target.list_folders()}
    for info in await source.list_folders():
        if not info.selectable:
            continue
        name = target_name(info.name, info.delimiter, target.delimiter)
        if name not in existing:
            report.folders_missing.append(info.name)
            continue
        check = FolderCheck(source=info.name, target=name)
        report.folders.append(check)
        async with (
            source.open_folder(info.name) as source_folder,
            target.open_folder(name) as target_folder,
        ):
            await _check_folder(check, source, target, state, source_folder, target_folder, deep)
    return report


async def _check_folder(  # noqa: PLR0917 - one folder pair and how to compare it
    check: FolderCheck,
    source: Store,
    target: Store,
    state: SyncState,
    source_folder: Folder,
    target_folder: Folder,
    deep: bool,
) -> None:
    listing = await source_folder.list_messages(detail=True)
    uidvalidity = listing.state.uidvalidity
    stored = await state.messages(target_folder, detail=True)
    by_origin = {
        m.origin.uid: m
        for m in stored
        if m.origin is not None and m.origin.uidvalidity == uidvalidity
    }
    present = {m.uid for m in listing.messages}
    check.not_marked_gone = sorted(
        uid for uid, m in by_origin.items() if uid not in present and m.gone_at is None
    )
    caps = target.capabilities
    keep = None if caps.custom_keywords else caps.permanent_flags
    exact = source.capabilities.exact_sizes and caps.exact_sizes
    for message in listing.messages:
        check.checked += 1
        mine = by_origin.get(message.uid)
        if mine is None:
            check.missing.append(message.uid)
            continue
        if exact and message.size is not None and message.size != mine.size:
            check.size_mismatch.append(message.uid)
        if (message.flags if keep is None else message.flags & keep) != mine.flags:
            check.flag_mismatch.append(message.uid)
    if deep:
        wanted = sorted(u for u in present if u in by_origin)
        theirs = await _stored_hashes(target_folder, [by_origin[u] for u in wanted])
        async for fetched in source_folder.fetch(wanted):
            if await _sha256(fetched) != theirs.get(by_origin[fetched.uid].uid):
                check.hash_mismatch.append(fetched.uid)


async def _stored_hashes(folder: Folder, messages: list[MessageInfo]) -> Mapping[int, str]:
    """Target UID -> SHA-256 of its content: recorded, or else fetched and hashed."""
    hashes = {m.uid: m.sha256 for m in messages if m.sha256 is not None}
    unknown = [m.uid for m in messages if m.sha256 is None]
    if unknown:
        async for fetched in folder.fetch(unknown):
            hashes[fetched.uid] = await _sha256(fetched)
    return hashes


async def _sha256(message: FetchedMessage) -> str:
    digest = hashlib.sha256()
    chunks: AsyncIterator[bytes] = message.chunks
    async for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()
