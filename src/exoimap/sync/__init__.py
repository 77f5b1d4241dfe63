"""exoimap.sync: the engine that moves mail between two stores.

Entry points: :func:`backup` (source -> archive) and :func:`verify`; for configured
accounts (what ``exoimap sync``/``verify``/``archive stats`` run): :func:`sync_accounts`,
:func:`verify_account`, :func:`archive_stats` in :mod:`exoimap.sync.accounts`.
"""

from exoimap.sync.accounts import (
    AccountResult,
    SyncOptions,
    archive_stats,
    sync_accounts,
    verify_account,
)
from exoimap.sync.engine import backup
from exoimap.sync.plan import BackupPolicy
from exoimap.sync.report import AuditEvent, FolderReport, Progress, SyncReport
from exoimap.sync.verify import FolderCheck, VerifyReport, verify

__all__ = [
    "AccountResult",
    "AuditEvent",
    "BackupPolicy",
    "FolderCheck",
    "FolderReport",
    "Progress",
    "SyncOptions",
    "SyncReport",
    "VerifyReport",
    "archive_stats",
    "backup",
    "sync_accounts",
    "verify",
    "verify_account",
]
