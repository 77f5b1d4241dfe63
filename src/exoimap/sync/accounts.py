"""Back up, verify and describe configured accounts: what ``exoimap sync`` and ``verify`` run.

For each account: its token provider -> a :class:`~exoimap.store.remote.RemoteImapStore`
(at most the account's ``max_connections`` connections) -> the
:class:`~exoimap.store.archive.ArchiveStore` at the account's ``archive`` path (default
``Paths.archive_dir(name)``) -> :func:`exoimap.sync.backup`. Several accounts run at once
(an :class:`asyncio.TaskGroup`); one account failing (sign-in, a locked archive) is
recorded in its result and does not stop the others.

Library users and the web console call :func:`sync_accounts` directly; the CLI only
prints what comes back. Every run records ``sync.folder`` audit events (and through the
auditor's listeners, the metrics) in the process's auditor, if one is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from exoimap import audit
from exoimap.audit.metrics import METRICS
from exoimap.config import AccountConfig, Paths
from exoimap.errors import ExoimapError, StoreError
from exoimap.net.account import AccountProvider, connection_for
from exoimap.net.session import NetEvent
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import MessageInfo, is_inbox
from exoimap.store.remote import RemoteImapStore
from exoimap.sync import resident
from exoimap.sync.engine import backup
from exoimap.sync.plan import BackupPolicy, archive_name, plan_messages
from exoimap.sync.report import Progress, SyncReport
from exoimap.sync.verify import VerifyReport, verify

__all__ = [
    "AccountResult",
    "ArchiveStats",
    "FolderPreview",
    "FolderStats",
    "ProviderFactory",
    "SyncOptions",
    "archive_path",
    "archive_stats",
    "folder_filter",
    "open_source",
    "sync_account",
    "sync_accounts",
    "verify_account",
]

#: Builds the token provider of an account (the CLI's asks for the vault passphrase).
ProviderFactory = Callable[[AccountConfig], AccountProvider]
#: Progress of one account's run: (account name, progress).
AccountProgress = Callable[[str, Progress], None]
#: Connection events of one account (throttling waits, retries): (account name, event).
AccountNetEvents = Callable[[str, NetEvent], None]


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """What to back up and how."""

    #: Glob patterns of source folder names to back up (empty: all).
    folders: tuple[str, ...] = ()
    #: Glob patterns of source folder names to leave out.
    exclude: tuple[str, ...] = ()
    #: Plan and report only: nothing is fetched and the archive is not changed.
    dry_run: bool = False
    #: Delete from the archive what was deleted on the server (default: keep, mark gone).
    mirror: bool = False
    #: The archive's fsync mode (see :meth:`ArchiveStore.open`).
    fsync_mode: str = "pool"


def _matches(name: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if fnmatch.fnmatchcase(name, pattern):
            return True
        if is_inbox(name) and fnmatch.fnmatchcase("INBOX", pattern.upper()):
            return True
    return False


def folder_filter(folders: Sequence[str], exclude: Sequence[str]) -> Callable[[str], bool] | None:
    """The engine's folder predicate for ``--folder``/``--exclude`` globs (None: all)."""
    if not folders and not exclude:
        return None
    wanted, unwanted = tuple(folders), tuple(exclude)

    def include(name: str) -> bool:
        if wanted and not _matches(name, wanted):
            return False
        return not _matches(name, unwanted)

    return include


def archive_path(account: AccountConfig, paths: Paths) -> Path:
    """Where the account's archive lives."""
    return (account.archive or paths.archive_dir(account.name)).expanduser()


@dataclass(slots=True)
class FolderPreview:
    """What a dry run found for one folder."""

    source: str
    archive: str
    new_folder: bool
    fetch: int
    fetch_bytes: int
    flags: int
    gone: int


@dataclass(slots=True)
class AccountResult:
    """The outcome of one account's run: a report, or (dry run) a preview, or an error."""

    account: str
    archive: Path
    report: SyncReport | None = None
    preview: list[FolderPreview] | None = None
    error: ExoimapError | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and (self.report is None or self.report.ok)

    def failures(self) -> list[str]:
        """One line per failed account, folder or message, saying why."""
        if self.error is not None:
            return [f"{self.account}: {self.error}"]
        lines: list[str] = []
        if self.report is not None:
            lines.extend(f"{self.account}: {e}" for e in self.report.errors)
            for folder in self.report.folders:
                lines.extend(f"{self.account}/{folder.source}: {e}" for e in folder.errors)
        return lines


async def open_source(
    account: AccountConfig,
    provider: AccountProvider,
    *,
    on_event: Callable[[NetEvent], None] | None = None,
) -> RemoteImapStore:
    """Connect to the account's mailbox (signs in once to learn the server)."""
    endpoint, credentials = connection_for(provider, ca_file=account.ca_file)
    return await RemoteImapStore.connect(
        endpoint,
        credentials,
        max_connections=account.max_connections,
        on_event=on_event,
        account=account.name,
    )


@contextlib.asynccontextmanager
async def _stores(
    account: AccountConfig,
    provider: AccountProvider,
    root: Path,
    *,
    fsync_mode: str,
    on_event: Callable[[NetEvent], None] | None,
) -> AsyncIterator[tuple[RemoteImapStore, ArchiveStore]]:
    # the archive first: a locked archive is reported before anything is signed in
    archive = ArchiveStore.open(
        root, fsync_mode=fsync_mode, trusted_index=resident.trusted_index(root)
    )
    try:
        kept = resident.current()
        if kept is None:
            source = await open_source(account, provider, on_event=on_event)
            try:
                yield source, archive
            finally:
                await source.close()
        else:  # in the agent: reuse the connection the last sync left, and leave one

            async def connect(events: Callable[[NetEvent], None]) -> RemoteImapStore:
                return await open_source(account, provider, on_event=events)

            source = await kept.sources.take(account, on_event or _no_events, connect)
            clean = False
            try:
                yield source, archive
                clean = True
            finally:
                await kept.sources.give_back(account, source, clean=clean)
    finally:
        await archive.close()


def _no_events(_event: NetEvent) -> None:
    pass


def _net_sink(name: str, on_net_event: AccountNetEvents | None) -> Callable[[NetEvent], None]:
    def sink(event: NetEvent) -> None:
        if event.kind == "throttled" and event.wait:
            METRICS.record_throttle_wait(event.wait, name)
        if on_net_event is not None:
            on_net_event(name, event)

    return sink


def _record(name: str, report: SyncReport, seconds: float) -> None:
    """Audit (and so count in the metrics) what the run did, one event per folder."""
    for folder in report.folders:
        audit.emit(
            audit.FolderSynced(
                account=name,
                outcome="success" if folder.ok else "failure",
                folder=folder.source,
                source="imap",
                target="archive",
                copied=folder.fetched,
                updated=folder.flags_changed + folder.rematched,
                deleted=folder.gone + folder.expunged,
                failed=len(folder.errors),
                bytes=folder.bytes,
                duration_s=round(seconds, 3),
            )
        )
        for error in folder.errors:
            METRICS.record_error(error)


async def _preview(
    source: RemoteImapStore, root: Path, options: SyncOptions
) -> list[FolderPreview]:
    """Plan every folder without changing anything (the archive is only read)."""
    include = folder_filter(options.folders, options.exclude)
    archive: ArchiveStore | None = None
    if (root / "index.sqlite").exists() or (root / "maildir").is_dir():
        archive = ArchiveStore.open(root, create=False, fsync_mode="none")
    previews: list[FolderPreview] = []
    try:
        for info in await source.list_folders():
            if not info.selectable or (include and not include(info.name)):
                continue
            name = archive_name(info.name, info.delimiter)
            record = await archive.folder_record(name) if archive is not None else None
            stored: list[MessageInfo] = []
            if archive is not None and record is not None:
                async with archive.open_folder(name) as folder:
                    stored = (await folder.list_messages()).messages
            async with source.open_folder(info.name) as remote:
                listing = await remote.list_messages(detail=True)
            plan = plan_messages(
                listing.state.uidvalidity,
                listing,
                stored,
                exact_sizes=source.capabilities.exact_sizes,
            )
            sizes = {m.uid: m.size or 0 for m in listing.messages}
            previews.append(
                FolderPreview(
                    source=info.name,
                    archive=name,
                    new_folder=record is None,
                    fetch=len(plan.fetch),
                    fetch_bytes=sum(sizes.get(uid, 0) for uid in plan.fetch),
                    flags=len(plan.flags),
                    gone=len(plan.gone),
                )
            )
    finally:
        if archive is not None:
            await archive.close()
    return previews


async def sync_account(
    account: AccountConfig,
    provider: AccountProvider,
    paths: Paths,
    options: SyncOptions | None = None,
    *,
    on_progress: AccountProgress | None = None,
    on_net_event: AccountNetEvents | None = None,
) -> AccountResult:
    """Back up one account (or with ``dry_run`` plan it). Errors end up in the result."""
    options = options or SyncOptions()
    root = archive_path(account, paths)
    result = AccountResult(account=account.name, archive=root)
    started = time.monotonic()
    sink = _net_sink(account.name, on_net_event)
    try:
        if options.dry_run:
            source = await open_source(account, provider, on_event=sink)
            try:
                result.preview = await _preview(source, root, options)
            finally:
                await source.close()
        else:
            policy = BackupPolicy(
                mirror=options.mirror,
                include=folder_filter(options.folders, options.exclude),
                max_parallel_folders=account.max_connections,
            )

            def progress(update: Progress) -> None:
                if on_progress is not None:
                    on_progress(account.name, update)

            with METRICS.time_sync(account.name):
                async with _stores(
                    account, provider, root, fsync_mode=options.fsync_mode, on_event=sink
                ) as (source, archive):
                    result.report = await backup(source, archive, policy, progress=progress)
                if result.report.ok:
                    resident.remember_index(root, archive.closed_index_stamp)
            _record(account.name, result.report, time.monotonic() - started)
    except ExoimapError as exc:
        result.error = exc
        METRICS.record_error(exc)
    result.seconds = time.monotonic() - started
    return result


async def sync_accounts(
    accounts: Sequence[AccountConfig],
    paths: Paths,
    provider_for: ProviderFactory,
    options: SyncOptions | None = None,
    *,
    on_progress: AccountProgress | None = None,
    on_net_event: AccountNetEvents | None = None,
) -> list[AccountResult]:
    """Back up several accounts at once; one result per account, in the order given."""
    providers = [provider_for(a) for a in accounts]
    tasks: list[asyncio.Task[AccountResult]] = []
    async with asyncio.TaskGroup() as group:
        for account, provider in zip(accounts, providers, strict=True):
            tasks.append(
                group.create_task(
                    sync_account(
                        account,
                        provider,
                        paths,
                        options,
                        on_progress=on_progress,
                        on_net_event=on_net_event,
                    )
                )
            )
    return [t.result() for t in tasks]


async def verify_account(
    account: AccountConfig,
    provider: AccountProvider,
    paths: Paths,
    *,
    deep: bool = False,
) -> VerifyReport:
    """Compare the account's archive with its mailbox (``deep``: SHA-256 of every message)."""
    root = archive_path(account, paths)
    if not root.is_dir():
        raise StoreError(
            f"account {account.name!r} has no archive at {root}; "
            f"back it up first: `exoimap sync {account.name}`"
        )
    async with _stores(account, provider, root, fsync_mode="pool", on_event=None) as (
        source,
        archive,
    ):
        report = await verify(source, archive, deep=deep)
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
        for row in await store.folder_records():
            folder = FolderStats(name=row.name, gone_folder=row.gone_at is not None)
            async with store.open_folder(row.name) as opened:
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
