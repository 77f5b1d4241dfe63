"""Verify a target against its source, through the sync state.

Shallow: every source folder has a target folder, every (selected) source UID is stored
exactly once (anchored), no stored message claims a source UID that is gone without being
marked gone (when deletions are followed), sizes agree (when both sides' sizes are exact),
internal dates agree, flags agree (on what the target can keep). The policy of the sync
being checked says which folders and messages were to be copied, and where to. Deep: also
fetch every source message and compare its SHA-256 with the stored one's (from the target's
listing where it records hashes, the archive; else fetched from the target too). How a
target checks its own files is the target's business (``ArchiveStore.verify_files``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from exoimap.store.base import (
    FetchedMessage,
    Folder,
    MessageInfo,
    MessageListing,
    Store,
    SyncState,
)
from exoimap.sync.listings import TargetSide
from exoimap.sync.plan import SyncPolicy

__all__ = ["FolderCheck", "VerifyReport", "verify"]


@dataclass(slots=True)
class FolderCheck:
    """Differences found in one folder (lists of source UIDs)."""

    source: str
    target: str
    checked: int = 0
    missing: list[int] = field(default_factory=list)
    not_marked_gone: list[int] = field(default_factory=list)
    #: Source UIDs stored more than once.
    duplicates: list[int] = field(default_factory=list)
    #: Source UIDs not copied on purpose (larger than the target takes).
    skipped: list[int] = field(default_factory=list)
    size_mismatch: list[int] = field(default_factory=list)
    date_mismatch: list[int] = field(default_factory=list)
    hash_mismatch: list[int] = field(default_factory=list)
    flag_mismatch: list[int] = field(default_factory=list)
    #: Source UID -> target UID of every stored copy whose content differs from the source
    #: message's (size, internal date or SHA-256): what :func:`exoimap.sync.repair.repair`
    #: fetches again.
    differing: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.not_marked_gone
            or self.duplicates
            or self.size_mismatch
            or self.date_mismatch
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
    source: Store,
    target: Store,
    state: SyncState,
    *,
    deep: bool = False,
    policy: SyncPolicy | None = None,
) -> VerifyReport:
    """Compare ``target`` with ``source`` (``deep``: SHA-256 of every message) as the sync
    with ``policy`` (default: a backup's) should have left it."""
    policy = policy or SyncPolicy()
    report = VerifyReport()
    existing = {info.name for info in await target.list_folders()}
    for info in await source.list_folders():
        if not info.selectable or (policy.include and not policy.include(info.name)):
            continue
        name = policy.target_folder(info, target.delimiter)
        if name is None:
            continue
        if name not in existing:
            report.folders_missing.append(info.name)
            continue
        check = FolderCheck(source=info.name, target=name)
        report.folders.append(check)
        async with (
            source.open_folder(info.name) as source_folder,
            target.open_folder(name) as target_folder,
        ):
            pair = _Pair(source, target, state, policy)
            await pair.check(check, source_folder, target_folder, deep=deep)
    return report


@dataclass(frozen=True, slots=True)
class _Pair:
    """The two stores, the state and the policy one folder pair is checked against."""

    source: Store
    target: Store
    state: SyncState
    policy: SyncPolicy

    def _wanted(self, message: MessageInfo) -> bool | None:
        """True to be copied, False not selected, None skipped (too large)."""
        if self.policy.select is not None and not self.policy.select(message):
            return False
        limit = self.policy.max_message_size or self.target.capabilities.max_message_size
        if limit is not None and (message.size or 0) > limit:
            return None
        return True

    async def check(
        self, check: FolderCheck, source_folder: Folder, target_folder: Folder, *, deep: bool
    ) -> None:
        """Check the folder pair one window of source UIDs at a time."""
        folder_state = await source_folder.state()
        side = await TargetSide.read(
            self.state,
            target_folder,
            folder_state.uidvalidity,
            per_window=self.policy.window_messages,
            detail=True,
            matching=False,
        )
        windows = side.windows(folder_state)
        whole = side.whole is not None
        for window in windows:
            listing = await source_folder.list_messages(detail=True, uids=None if whole else window)
            stored = await side.window(window)
            windows.held(max(len(listing.messages), len(stored)))
            folders = (source_folder, target_folder) if deep else None
            await self._check_window(check, listing, stored, folders)

    async def _check_window(
        self,
        check: FolderCheck,
        listing: MessageListing,
        stored: list[MessageInfo],
        folders: tuple[Folder, Folder] | None,
    ) -> None:
        """One window; ``folders`` (source, target): also compare every message's hash."""
        uidvalidity = listing.state.uidvalidity
        by_origin: dict[int, MessageInfo] = {}
        for m in stored:
            if m.origin is not None and m.origin.uidvalidity == uidvalidity:
                if m.origin.uid in by_origin:
                    check.duplicates.append(m.origin.uid)
                by_origin[m.origin.uid] = m
        present = {m.uid for m in listing.messages}
        if self.policy.track_deletions:
            check.not_marked_gone += sorted(
                uid for uid, m in by_origin.items() if uid not in present and m.gone_at is None
            )
        for message in listing.messages:
            self._compare(check, message, by_origin.get(message.uid))
        if folders is not None:
            wanted = sorted(u for u in present if u in by_origin)
            await _compare_hashes(check, folders, wanted, by_origin)

    def _compare(self, check: FolderCheck, message: MessageInfo, mine: MessageInfo | None) -> None:
        if mine is None:
            wanted = self._wanted(message)
            if wanted:
                check.checked += 1
                check.missing.append(message.uid)
            elif wanted is None:
                check.skipped.append(message.uid)
            return
        check.checked += 1
        caps = self.target.capabilities
        keep = None if caps.custom_keywords else caps.permanent_flags
        exact = self.source.capabilities.exact_sizes and caps.exact_sizes
        if exact and message.size is not None and message.size != mine.size:
            check.size_mismatch.append(message.uid)
            check.differing[message.uid] = mine.uid
        if (message.flags if keep is None else message.flags & keep) != mine.flags:
            check.flag_mismatch.append(message.uid)
        if (
            message.internal_date
            and mine.internal_date
            and message.internal_date != mine.internal_date
        ):
            check.date_mismatch.append(message.uid)
            check.differing[message.uid] = mine.uid  # what a backup counts as other content


async def _compare_hashes(
    check: FolderCheck,
    folders: tuple[Folder, Folder],
    wanted: list[int],
    by_origin: Mapping[int, MessageInfo],
) -> None:
    """Fetch the source UIDs ``wanted`` and compare each one's SHA-256 with its copy's."""
    source_folder, target_folder = folders
    theirs = await _stored_hashes(target_folder, [by_origin[u] for u in wanted])
    async for fetched in source_folder.fetch(wanted):
        mine = by_origin[fetched.uid].uid
        if await _sha256(fetched) != theirs.get(mine):
            check.hash_mismatch.append(fetched.uid)
            check.differing[fetched.uid] = mine


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
