"""exoimap.app: the application service between the front ends (CLI, agent, console,
tenant workers) and the sync engine.

On open stores (:mod:`exoimap.app.operations`): :func:`backup`, :func:`plan_backup` (the
dry run: the engine in plan-only mode) and :func:`verify_archive`. On configured accounts:
:func:`sync_accounts` (:mod:`exoimap.app.accounts`), :func:`verify_account` and
:func:`archive_stats` (:mod:`exoimap.app.checks`). A resident process passes its
:class:`~exoimap.app.resident.Resident` explicitly to reuse connections.
"""

from exoimap.app.accounts import AccountResult, SyncOptions, sync_accounts
from exoimap.app.checks import ArchiveStats, archive_stats, verify_account
from exoimap.app.operations import ArchiveCheck, backup, plan_backup, verify_archive

__all__ = [
    "AccountResult",
    "ArchiveCheck",
    "ArchiveStats",
    "SyncOptions",
    "archive_stats",
    "backup",
    "plan_backup",
    "sync_accounts",
    "verify_account",
    "verify_archive",
]
