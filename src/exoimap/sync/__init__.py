"""exoimap.sync: the engine that moves mail between two stores.

Entry points: :func:`backup` (source -> archive) and :func:`verify`.
"""

from exoimap.sync.engine import backup
from exoimap.sync.plan import BackupPolicy
from exoimap.sync.report import AuditEvent, FolderReport, Progress, SyncReport
from exoimap.sync.verify import FolderCheck, VerifyReport, verify

__all__ = [
    "AuditEvent",
    "BackupPolicy",
    "FolderCheck",
    "FolderReport",
    "Progress",
    "SyncReport",
    "VerifyReport",
    "backup",
    "verify",
]
