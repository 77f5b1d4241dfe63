"""Look at an account's archive: verify it against the mailbox, or count what it holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from exoimap import audit
from exoimap.app.accounts import archive_path, opened_stores
from exoimap.app.audit_events import sync_event_recorder
from exoimap.app.operations import ArchiveCheck, verify_archive
from exoimap.config import AccountConfig, Paths
from exoimap.errors import StoreError
from exoimap.net.account import AccountProvider
from exoimap.store.archive import ArchiveStore

__all__ = ["ArchiveStats", "FolderStats", "archive_stats", "verify_account"]


async def verify_account(
    account: AccountConfig,
    provider: AccountProvider,
    paths: Paths,
    *,
    deep: bool = False,
    repair: bool = False,
) -> ArchiveCheck:
    """Compare the account's archive with its mailbox (``deep``: SHA-256 of every message;
    ``repair``: then fetch again what differs or is missing)."""
    root = archive_path(account, paths)
    if not root.is_dir():
        raise StoreError(
            f"account {account.name!r} has no archive at {root}; "
            f"back it up first: `exoimap sync {account.name}`"
        )
    async with opened_stores(account, provider, root) as (source, archive):
        report = await verify_archive(
            source,
            archive,
            deep=deep,
            repair_it=repair,
            events=sync_event_recorder(account.name) if repair else None,
        )
    mismatches = sum(
        len(f.size_mismatch) + len(f.hash_mismatch) + len(f.flag_mismatch) for f in report.folders
    ) + len(report.files.corrupt)
    missing = (
        sum(len(f.missing) for f in report.folders)
        + len(report.files.missing)
        + len(report.folders_missing)
    )
    audit.emit(
        audit.ArchiveVerified(
            account=account.name,
            outcome="success" if report.ok else "failure",
            messages=report.files.checked,
            mismatches=mismatches,
            missing=missing,
        )
    )
    return report


@dataclass(slots=True)
class FolderStats:
    name: str
    messages: int = 0
    bytes: int = 0
    gone: int = 0
    gone_folder: bool = False


@dataclass(slots=True)
class ArchiveStats:
    """What an archive holds (read from its index; no server needed)."""

    root: Path
    folders: list[FolderStats] = field(default_factory=list)
    recovery_notes: list[str] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(f.messages for f in self.folders)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.folders)


async def archive_stats(account: AccountConfig, paths: Paths) -> ArchiveStats:
    """Folders, messages and bytes in the account's archive (an audited archive read)."""
    root = archive_path(account, paths)
    store = ArchiveStore.open(root, create=False, fsync_mode="none")
    stats = ArchiveStats(root=root)
    try:
        stats.recovery_notes = list(store.recovery_notes)
        for info in await store.list_folders():
            folder = FolderStats(name=info.name, gone_folder=info.gone_at is not None)
            async with store.open_folder(info.name) as opened:
                listing = await opened.list_messages(detail=True)
            for message in listing.messages:
                folder.messages += 1
                folder.bytes += message.size or 0
                folder.gone += message.gone_at is not None
            stats.folders.append(folder)
    finally:
        await store.close()
    audit.emit(audit.ArchiveRead(account=account.name, messages=stats.messages, purpose="stats"))
    return stats
