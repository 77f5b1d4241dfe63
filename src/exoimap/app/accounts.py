"""Back up, plan and verify configured accounts: what ``exoimap sync`` and ``verify`` run.

For each account: its token provider -> a :class:`~exoimap.store.remote.RemoteImapStore`
(at most the account's ``max_connections`` connections) -> the
:class:`~exoimap.store.archive.ArchiveStore` at the account's ``archive`` path (default
``Paths.archive_dir(name)``) -> :func:`exoimap.app.operations.backup`. Several accounts run
at once (an :class:`asyncio.TaskGroup`); one account failing (sign-in, a locked archive) is
recorded in its result and does not stop the others.

Library users, the agent, the web console and the tenant workers call
:func:`sync_accounts` directly; the CLI only prints what comes back. Connection reuse is
explicit: pass the :class:`~exoimap.app.resident.Resident` of a resident process. Every run
records audit events (``sync.folder`` per folder, ``sync.change`` per change of the target's
shape, ``sync.account`` per account, ``imap.throttled`` per throttling wait) in the
process's auditor, if one is set; the metrics count them through the auditor's listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from exoimap import audit
from exoimap.app.audit_events import sync_event_recorder
from exoimap.app.operations import backup, plan_backup
from exoimap.app.resident import Resident
from exoimap.config import AccountConfig, Paths
from exoimap.errors import DiskFull, ExoimapError
from exoimap.net.account import AccountProvider, connection_for
from exoimap.net.imap import RetryPolicy
from exoimap.net.session import NetEvent
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import is_inbox
from exoimap.store.remote import RemoteImapStore
from exoimap.sync.plan import SyncPolicy
from exoimap.sync.report import Progress, SyncReport
from exoimap.words import byte_size, plural, sentences

__all__ = [
    "AccountResult",
    "ProviderFactory",
    "SyncOptions",
    "archive_path",
    "folder_filter",
    "open_source",
    "opened_stores",
    "sync_account",
    "sync_accounts",
]

log = logging.getLogger(__name__)

#: How long a sync waits for the archive's lock: a reader such as the console holds it for
#: one page; another sync holds it much longer and is reported.
READER_GRACE = 5.0

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
    fsync_mode: str = "auto"


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
class AccountResult:
    """The outcome of one account's run: a report (a dry run's has ``plan_only``), or an
    error."""

    account: str
    archive: Path
    report: SyncReport | None = None
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
        retry=RetryPolicy(give_up_after=account.unreachable_timeout),
        on_event=on_event,
        account=account.name,
    )


@contextlib.asynccontextmanager
async def opened_stores(
    account: AccountConfig,
    provider: AccountProvider,
    root: Path,
    *,
    fsync_mode: str = "auto",
    on_event: Callable[[NetEvent], None] | None = None,
    kept: Resident | None = None,
) -> AsyncIterator[tuple[RemoteImapStore, ArchiveStore]]:
    """The account's mailbox and archive, open; with ``kept``, the connection the last
    sync of a resident process left is reused (and one is left for the next)."""
    # the archive first: a locked archive is reported before anything is signed in
    archive = ArchiveStore.open(
        root,
        fsync_mode=fsync_mode,
        trusted_index=kept.trusted_index(root) if kept is not None else None,
        lock_wait=READER_GRACE,
    )
    try:
        if kept is None:
            source = await open_source(account, provider, on_event=on_event)
            try:
                yield source, archive
            finally:
                await source.close()
        else:

            async def connect(events: Callable[[NetEvent], None]) -> RemoteImapStore:
                return await open_source(account, provider, on_event=events)

            source = await kept.sources.take(account, on_event or _no_events, connect)
            source.reachability.reset()  # the deadline is per run
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
            audit.emit(
                audit.ImapThrottled(
                    account=name, host=event.host, wait_s=event.wait, reason=event.detail
                )
            )
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
                error_kinds=tuple(type(error).__name__ for error in folder.errors),
            )
        )


def _record_run(result: AccountResult, *, dry_run: bool) -> None:
    """Audit (and so count in the metrics) how one account's run ended."""
    report, error = result.report, result.error
    folders = report.folders if report is not None else []
    audit.emit(
        audit.AccountSynced(
            account=result.account,
            outcome="success" if result.ok else "failure",
            source="imap",
            target="archive",
            dry_run=dry_run,
            folders=len(folders),
            copied=sum(f.fetched for f in folders),
            failed=sum(len(f.errors) for f in folders),
            bytes=sum(f.bytes for f in folders),
            duration_s=round(result.seconds, 3),
            error=str(error) if error else "",
            error_kind=type(error).__name__ if error else "",
        )
    )


async def _dry_run(
    account: AccountConfig,
    provider: AccountProvider,
    root: Path,
    policy: SyncPolicy,
    sink: Callable[[NetEvent], None],
) -> SyncReport:
    """Plan the account's backup without changing anything (the archive is only read)."""
    source = await open_source(account, provider, on_event=sink)
    try:
        if not ((root / "index.sqlite").exists() or (root / "maildir").is_dir()):
            return await plan_backup(source, None, policy)
        archive = ArchiveStore.open(root, create=False, fsync_mode="none")
        try:
            return await plan_backup(source, archive, policy)
        finally:
            await archive.close()
    finally:
        await source.close()


#: How long a full disk's message may take to work out how much the backup still needs.
SPACE_NEEDED_TIMEOUT = 60.0


async def _with_space_needed(  # noqa: PLR0917 - the account's stores, as for a dry run
    full: DiskFull,
    account: AccountConfig,
    provider: AccountProvider,
    root: Path,
    policy: SyncPolicy,
    sink: Callable[[NetEvent], None],
) -> DiskFull:
    """``full`` saying how much the rest of the backup needs: what a dry run would still
    fetch now (the archive only read; it plans from what the run did commit)."""
    try:
        async with asyncio.timeout(SPACE_NEEDED_TIMEOUT):
            plan = await _dry_run(account, provider, root, policy, sink)
    except (ExoimapError, TimeoutError):
        needed = f"`exoimap sync {account.name} --dry-run` shows how much the backup still needs"
    else:
        count = sum(f.planned for f in plan.folders)
        size = sum(f.planned_bytes for f in plan.folders)
        if count:
            needed = f"The rest of this backup needs at least {byte_size(size)} more for "
            needed += plural(count, "message")
        else:  # the index or the run journal could not grow
            needed = "No message is left to fetch: a few MB for the archive's index are enough"
        if not plan.ok:  # a folder could not be planned: its messages are not counted
            needed += " (not counting folders that could not be listed)"
    return DiskFull(sentences(str(full), needed), folder=full.folder)


async def sync_account(
    account: AccountConfig,
    provider: AccountProvider,
    paths: Paths,
    options: SyncOptions | None = None,
    *,
    on_progress: AccountProgress | None = None,
    on_net_event: AccountNetEvents | None = None,
    kept: Resident | None = None,
) -> AccountResult:
    """Back up one account (or with ``dry_run`` plan it). Errors end up in the result."""
    options = options or SyncOptions()
    root = archive_path(account, paths)
    result = AccountResult(account=account.name, archive=root)
    started = time.monotonic()
    sink = _net_sink(account.name, on_net_event)
    policy = SyncPolicy(
        mirror=options.mirror,
        include=folder_filter(options.folders, options.exclude),
        max_parallel_folders=account.max_connections,
    )
    try:
        if options.dry_run:
            result.report = await _dry_run(account, provider, root, policy, sink)
        else:
            result.report = await _backup(
                account,
                provider,
                root,
                policy,
                options,
                sink,
                on_progress,
                kept,
                search_index=paths.search_index,
            )
            _record(account.name, result.report, time.monotonic() - started)
        # what stopped the run (a full disk, a dead server) is the account's outcome,
        # rather than one line per folder it cut short
        result.error = result.report.stopped_by
    except ExoimapError as exc:
        result.error = exc
    if isinstance(result.error, DiskFull) and not options.dry_run:
        result.error = await _with_space_needed(result.error, account, provider, root, policy, sink)
    result.seconds = time.monotonic() - started
    _record_run(result, dry_run=options.dry_run)
    return result


async def _backup(  # noqa: PLR0917 - the account's run, spelled out
    account: AccountConfig,
    provider: AccountProvider,
    root: Path,
    policy: SyncPolicy,
    options: SyncOptions,
    sink: Callable[[NetEvent], None],
    on_progress: AccountProgress | None,
    kept: Resident | None,
    *,
    search_index: Path,
) -> SyncReport:
    def progress(update: Progress) -> None:
        if on_progress is not None:
            on_progress(account.name, update)

    async with opened_stores(
        account, provider, root, fsync_mode=options.fsync_mode, on_event=sink, kept=kept
    ) as (source, archive):
        report = await backup(
            source,
            archive,
            policy,
            progress=progress,
            events=sync_event_recorder(account.name),
        )
        if report.ok:
            archive.trust_index_when_closed()
        await _update_search(archive, search_index, account)
    if report.ok and kept is not None:
        kept.remember_index(root, archive.closed_index_stamp)
    return report


async def _update_search(archive: ArchiveStore, search_index: Path, account: AccountConfig) -> None:
    """Index what the backup archived (a failure leaves the index behind, not the backup:
    the next sync catches up). Only where a console made the index: indexing costs more
    than the backup itself, for nothing when nobody searches."""
    if not search_index.is_file():
        return
    # imported here, not above: the indexer's mail parser (``email``, ``html``) costs every
    # sync's start about 7 ms, and most installations have no console
    from exoimap.store.search import SearchIndex, update_search

    try:
        await update_search(
            archive, SearchIndex(search_index), account=account.name, mailbox=account.email
        )
    except ExoimapError as exc:
        log.warning("%s: the search index was not updated: %s", account.name, exc)


async def sync_accounts(
    accounts: Sequence[AccountConfig],
    paths: Paths,
    provider_for: ProviderFactory,
    options: SyncOptions | None = None,
    *,
    on_progress: AccountProgress | None = None,
    on_net_event: AccountNetEvents | None = None,
    kept: Resident | None = None,
) -> list[AccountResult]:
    """Back up several accounts at once; one result per account, in the order given.
    ``kept``: a resident process's state, to reuse its connections."""
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
                        kept=kept,
                    )
                )
            )
    return [t.result() for t in tasks]
