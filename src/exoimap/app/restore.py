"""Restore: bring messages back from an account's archive into a mailbox, exactly once.

The one sync engine copies archive -> mailbox with the rules of a one-way copy (nothing on
the target is ever deleted or marked gone) and a :class:`~exoimap.store.ledger.Ledger` as
its memory, so a restore that is run again, or resumed after ``kill -9``, copies only what
is not there yet. Where messages go:

* by default into a new folder ``Restored <date time>`` that keeps the hierarchy (nothing of
  the mailbox is touched); a restore that was interrupted goes on into its own folder;
* ``merge``: back into their own folders (the folder of the same special-use role on the
  target, e.g. ``Sent`` -> ``Sent Items``, else the same name), skipping messages already
  there (same Message-ID and size);
* ``into``: under the given folder, keeping the hierarchy.

Which messages: folder globs, an internal-date range, Message-IDs; messages deleted on the
server (kept in the archive, marked gone) only with ``include_deleted``. Exchange's non-mail
folders (calendar, contacts, tasks, notes, journal) are left out. Messages larger than the
target takes (Exchange: 35 MB unless configured otherwise) are skipped and reported with the
reason, before anything is written.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from exoimap import audit
from exoimap.app.accounts import AccountResult, archive_path, folder_filter, open_source
from exoimap.app.audit_events import sync_event_recorder
from exoimap.config import AccountConfig, Paths
from exoimap.errors import ExoimapError, StoreError
from exoimap.net.account import AccountProvider
from exoimap.net.session import NetEvent
from exoimap.protocol.headers import normalize_message_id
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import FolderInfo, MessageInfo, SpecialUse, Store
from exoimap.store.ledger import Ledger
from exoimap.store.remote import RemoteImapStore
from exoimap.sync.engine import sync
from exoimap.sync.plan import SyncPolicy, target_name
from exoimap.sync.report import ProgressCallback, SyncReport
from exoimap.sync.verify import VerifyReport, verify

__all__ = [
    "EXCHANGE_RECEIVE_LIMIT",
    "NON_MAIL_FOLDERS",
    "RestoreOptions",
    "RestoreRequest",
    "folders_by_role",
    "is_mail_folder",
    "ledger_path",
    "restore_account",
    "restore_policy",
    "verify_restore",
]

#: Exchange Online's default maximum receive size (the admin may raise it to 150 MB).
EXCHANGE_RECEIVE_LIMIT = 35 * 1024 * 1024
#: Exchange folders that hold no mail (their items are not messages).
NON_MAIL_FOLDERS = frozenset({"Calendar", "Contacts", "Tasks", "Notes", "Journal"})


@dataclass(frozen=True, slots=True)
class RestoreOptions:
    """What to restore and where to."""

    folders: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    since: _dt.date | None = None
    until: _dt.date | None = None
    message_ids: tuple[str, ...] = ()
    include_deleted: bool = False
    #: ``new`` (a ``Restored <date time>`` folder), ``merge`` or ``into``.
    mode: str = "new"
    into: str | None = None
    dry_run: bool = False
    #: Largest message to copy, in bytes (``None``: the target's own limit).
    max_message_size: int | None = None

    @classmethod
    def from_selection(cls, selection: Mapping[str, object]) -> RestoreOptions:
        """The options :meth:`selection` recorded (to check a restore afterwards)."""

        def day(key: str) -> _dt.date | None:
            value = selection.get(key)
            return _dt.date.fromisoformat(value) if isinstance(value, str) else None

        def texts(key: str) -> tuple[str, ...]:
            value = selection.get(key)
            return tuple(str(v) for v in value) if isinstance(value, list) else ()

        into = selection.get("into")
        limit = selection.get("max_message_size")
        return cls(
            folders=texts("folders"),
            exclude=texts("exclude"),
            since=day("since"),
            until=day("until"),
            message_ids=texts("message_ids"),
            include_deleted=bool(selection.get("include_deleted")),
            mode=str(selection.get("mode") or "new"),
            into=into if isinstance(into, str) else None,
            max_message_size=limit if isinstance(limit, int) else None,
        )

    def selection(self) -> dict[str, object]:
        """What identifies this restore's choice of messages (to resume it)."""
        return {
            "folders": list(self.folders),
            "exclude": list(self.exclude),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "message_ids": sorted(self.message_ids),
            "include_deleted": self.include_deleted,
            "mode": self.mode,
            "into": self.into,
            "max_message_size": self.max_message_size,
        }


def _select(options: RestoreOptions) -> Callable[[MessageInfo], bool]:
    wanted_ids = {normalize_message_id(m) for m in options.message_ids}

    def select(message: MessageInfo) -> bool:
        if message.gone_at is not None and not options.include_deleted:
            return False
        day = message.internal_date.date() if message.internal_date else None
        if options.since and (day is None or day < options.since):
            return False
        if options.until and (day is None or day > options.until):
            return False
        return not wanted_ids or message.message_id in wanted_ids

    return select


def restore_policy(
    options: RestoreOptions, prefix: str, roles: Mapping[SpecialUse, str]
) -> SyncPolicy:
    """The engine's rules for this restore. ``prefix`` is the folder of a ``new`` restore,
    ``roles`` the target's folders by special-use role (for ``merge``)."""

    def folder_map(info: FolderInfo, delimiter: str) -> str | None:
        if not is_mail_folder(info):
            return None
        name = target_name(info.name, info.delimiter, delimiter)
        if options.mode == "merge":
            return roles.get(info.role, name) if info.role is not None else name
        top = options.into if options.mode == "into" and options.into else prefix
        return f"{top}{delimiter}{name}"

    return SyncPolicy(
        folder_map=folder_map,
        select=_select(options),
        include=folder_filter(options.folders, options.exclude),
        track_deletions=False,
        max_message_size=options.max_message_size,
        follow_content=False,
    )


def ledger_path(paths: Paths, account: str, target: str) -> Path:
    """Where the ledger of restores from ``account``'s archive into ``target`` lives."""
    return paths.data_dir / "ledgers" / f"restore-{account}-to-{target}.sqlite"


async def folders_by_role(target: Store) -> dict[SpecialUse, str]:
    """The target's folders by special-use role (INBOX aside)."""
    return {
        info.role: info.name
        for info in await target.list_folders()
        if info.role is not None and info.role is not SpecialUse.INBOX
    }


def is_mail_folder(info: FolderInfo) -> bool:
    """False for Exchange's folders that hold no mail (and their children)."""
    return info.name.split(info.delimiter or "/")[0] not in NON_MAIL_FOLDERS


@dataclass(frozen=True, slots=True)
class RestoreRequest:
    """Who restores what into which mailbox."""

    account: AccountConfig
    target: AccountConfig
    provider: AccountProvider
    paths: Paths
    options: RestoreOptions


async def restore_account(
    request: RestoreRequest,
    *,
    on_progress: ProgressCallback | None = None,
    on_net_event: Callable[[NetEvent], None] | None = None,
) -> AccountResult:
    """Restore (or with ``dry_run`` plan) one account's archive into a mailbox. Errors end
    up in the result."""
    root = archive_path(request.account, request.paths)
    result = AccountResult(account=request.account.name, archive=root)
    started = time.monotonic()
    try:
        if not (root / "index.sqlite").exists():
            raise StoreError(
                f"account {request.account.name!r} has no archive at {root}; "
                f"back it up first: `exoimap sync {request.account.name}`"
            )
        result.report = await _restore(request, root, on_progress, on_net_event)
    except ExoimapError as exc:
        result.error = exc
    result.seconds = time.monotonic() - started
    if result.report is not None and not result.report.plan_only:
        _audit(request, result.report)
    return result


async def _restore(
    request: RestoreRequest,
    root: Path,
    on_progress: ProgressCallback | None,
    on_net_event: Callable[[NetEvent], None] | None,
) -> SyncReport:
    options = request.options
    async with _opened(request, root, on_net_event) as (archive, target, ledger):
        prefix = await _prefix(ledger, options)
        await ledger.set_context({"selection": options.selection(), "prefix": prefix})
        return await sync(
            archive,
            target,
            ledger,
            await _policy(archive, target, options, prefix),
            progress=on_progress,
            events=sync_event_recorder(request.account.name),
            plan_only=options.dry_run,
        )


@contextlib.asynccontextmanager
async def _opened(
    request: RestoreRequest, root: Path, on_net_event: Callable[[NetEvent], None] | None = None
) -> AsyncIterator[tuple[ArchiveStore, RemoteImapStore, Ledger]]:
    """The archive, the target mailbox and the ledger of this pair, open; closed after."""
    async with contextlib.AsyncExitStack() as stack:
        archive = ArchiveStore.open(root, create=False)
        stack.push_async_callback(archive.close)
        target = await open_source(request.target, request.provider, on_event=on_net_event)
        stack.push_async_callback(target.close)
        ledger = await Ledger.open(
            ledger_path(request.paths, request.account.name, request.target.name)
        )
        stack.push_async_callback(ledger.close)
        yield archive, target, ledger


async def _policy(
    archive: ArchiveStore, target: RemoteImapStore, options: RestoreOptions, prefix: str
) -> SyncPolicy:
    """The engine's rules for this restore into this mailbox: folders by its roles, only
    folders with selected mail, its size limit (Exchange: 35 MB unless told otherwise)."""
    policy = restore_policy(options, prefix, await folders_by_role(target))
    limit = options.max_message_size
    if limit is None and target.exchange:
        limit = EXCHANGE_RECEIVE_LIMIT
    return _narrowed(policy, await _folders_with_mail(archive, policy), limit)


async def _folders_with_mail(archive: ArchiveStore, policy: SyncPolicy) -> set[str]:
    """The archive folders holding at least one selected message: a restore creates no
    empty folders (the archive is local: listing it is cheap)."""
    names: set[str] = set()
    for info in await archive.list_folders():
        if policy.include is not None and not policy.include(info.name):
            continue
        async with archive.open_folder(info.name) as folder:
            listing = await folder.list_messages(detail=True)
        if policy.select is None or any(policy.select(m) for m in listing.messages):
            names.add(info.name)
    return names


def _narrowed(policy: SyncPolicy, folders: set[str], limit: int | None) -> SyncPolicy:
    return replace(policy, include=folders.__contains__, max_message_size=limit)


async def _prefix(ledger: Ledger, options: RestoreOptions) -> str:
    """The ``Restored <date time>`` folder: an interrupted restore of the same selection
    goes on into its own; otherwise a new one."""
    interrupted = await ledger.interrupted_context()
    if interrupted and interrupted.get("selection") == options.selection():
        prefix = interrupted.get("prefix")
        if isinstance(prefix, str):
            return prefix
    return _dt.datetime.now().astimezone().strftime("Restored %Y-%m-%d %H-%M-%S")


async def verify_restore(request: RestoreRequest, *, deep: bool = True) -> VerifyReport:
    """Check the last restore from ``request.account``'s archive into ``request.target``:
    every message it selected is there exactly once, byte-exact (``deep``), with its flags
    and date. ``request.options`` is ignored: the ledger knows what that restore chose."""
    root = archive_path(request.account, request.paths)
    path = ledger_path(request.paths, request.account.name, request.target.name)
    if not path.exists():
        raise StoreError(
            f"no restore from {request.account.name!r} into {request.target.name!r} to check"
        )
    async with _opened(request, root) as (archive, target, ledger):
        context = await ledger.last_context() or {}
        selection = context.get("selection")
        options = RestoreOptions.from_selection(selection if isinstance(selection, dict) else {})
        policy = await _policy(archive, target, options, str(context.get("prefix") or ""))
        return await verify(archive, target, ledger, deep=deep, policy=policy)


def _audit(request: RestoreRequest, report: SyncReport) -> None:
    audit.emit(
        audit.ArchiveRestored(
            account=request.account.name,
            outcome="success" if report.ok else "failure",
            target=request.target.name,
            messages=report.fetched,
            bytes=report.bytes,
        )
    )
