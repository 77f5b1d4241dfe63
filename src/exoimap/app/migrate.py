"""Migrate: mailbox to mailbox, directly (e.g. a Dovecot or another tenant into Exchange
Online), on the one sync engine with a :class:`~exoimap.store.ledger.Ledger` as its memory.

Folders go to the target's folder of the same special-use role (``Sent`` -> ``Sent Items``,
``Trash`` -> ``Deleted Items``, ...), else to the same name with the delimiter converted;
``--map SRC=DST`` decides for the rest. A migration only adds: re-running it copies what is
new on the source and brings flag changes across, and never deletes on the target. Messages
the target already holds (same Message-ID and size) are recorded, not copied again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from exoimap import audit
from exoimap.app.accounts import AccountResult, archive_path, folder_filter, open_source
from exoimap.app.audit_events import sync_event_recorder
from exoimap.app.restore import EXCHANGE_RECEIVE_LIMIT, folders_by_role, is_mail_folder
from exoimap.config import AccountConfig, Paths
from exoimap.errors import ExoimapError
from exoimap.net.account import AccountProvider
from exoimap.net.session import NetEvent
from exoimap.store.base import FolderInfo, SpecialUse
from exoimap.store.ledger import Ledger
from exoimap.sync.engine import sync
from exoimap.sync.plan import SyncPolicy, target_name
from exoimap.sync.report import ProgressCallback, SyncReport

__all__ = ["MigrateOptions", "MigrateRequest", "migrate_account", "migrate_policy"]


@dataclass(frozen=True, slots=True)
class MigrateOptions:
    """Which folders, and where the ones that match no role go."""

    folders: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: Source folder name -> target folder name (before any other rule).
    maps: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False


def migrate_policy(options: MigrateOptions, roles: Mapping[SpecialUse, str]) -> SyncPolicy:
    """The engine's rules for a migration into a target whose folders by role are
    ``roles``."""

    def folder_map(info: FolderInfo, delimiter: str) -> str | None:
        if not is_mail_folder(info):
            return None
        if info.name in options.maps:
            return options.maps[info.name]
        if info.role is not None and info.role in roles:
            return roles[info.role]
        return target_name(info.name, info.delimiter, delimiter)

    return SyncPolicy(
        folder_map=folder_map,
        include=folder_filter(options.folders, options.exclude),
        track_deletions=False,
        follow_content=False,
    )


@dataclass(frozen=True, slots=True)
class MigrateRequest:
    """From which mailbox to which, and how each signs in."""

    source: AccountConfig
    target: AccountConfig
    provider_for: Callable[[AccountConfig], AccountProvider]
    paths: Paths
    options: MigrateOptions


def ledger_path(paths: Paths, source: str, target: str) -> Path:
    """Where the ledger of migrations from ``source`` into ``target`` lives."""
    return paths.data_dir / "ledgers" / f"migrate-{source}-to-{target}.sqlite"


async def migrate_account(
    request: MigrateRequest,
    *,
    on_progress: ProgressCallback | None = None,
    on_net_event: Callable[[NetEvent], None] | None = None,
) -> AccountResult:
    """Migrate (or with ``dry_run`` plan) one mailbox into another. Errors end up in the
    result."""
    result = AccountResult(
        account=request.source.name, archive=archive_path(request.source, request.paths)
    )
    started = time.monotonic()
    try:
        result.report = await _migrate(request, on_progress, on_net_event)
    except ExoimapError as exc:
        result.error = exc
    result.seconds = time.monotonic() - started
    if result.report is not None and not result.report.plan_only:
        _audit(request, result.report, result.seconds)
    return result


async def _migrate(
    request: MigrateRequest,
    on_progress: ProgressCallback | None,
    on_net_event: Callable[[NetEvent], None] | None,
) -> SyncReport:
    source = await open_source(
        request.source, request.provider_for(request.source), on_event=on_net_event
    )
    try:
        target = await open_source(
            request.target, request.provider_for(request.target), on_event=on_net_event
        )
        try:
            ledger = await Ledger.open(
                ledger_path(request.paths, request.source.name, request.target.name)
            )
            try:
                policy = migrate_policy(request.options, await folders_by_role(target))
                if target.exchange:  # its default receive limit, checked before any APPEND
                    policy = replace(policy, max_message_size=EXCHANGE_RECEIVE_LIMIT)
                return await sync(
                    source,
                    target,
                    ledger,
                    policy,
                    progress=on_progress,
                    events=sync_event_recorder(request.source.name),
                    plan_only=request.options.dry_run,
                )
            finally:
                await ledger.close()
        finally:
            await target.close()
    finally:
        await source.close()


def _audit(request: MigrateRequest, report: SyncReport, seconds: float) -> None:
    folders = report.folders
    audit.emit(
        audit.AccountSynced(
            account=request.source.name,
            outcome="success" if report.ok else "failure",
            source=f"imap:{request.source.name}",
            target=f"imap:{request.target.name}",
            dry_run=False,
            folders=len(folders),
            copied=report.fetched,
            failed=sum(len(f.errors) + len(f.skipped) for f in folders),
            bytes=report.bytes,
            duration_s=round(seconds, 3),
        )
    )
