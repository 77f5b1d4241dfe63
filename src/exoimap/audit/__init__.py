"""exoimap.audit: a tamper-evident record of every sign-in, connection, transfer and
archive access, with nothing secret in it.

Emitting (what library code calls; with no auditor installed the event is checked and
dropped):

>>> from exoimap import audit
>>> audit.emit(audit.ImapConnected(account="work", host="outlook.office365.com",
...                                tls_version="TLSv1.3"))
>>> audit.TokenFailed(flow="device", error="refresh_token=0.AbCdEf123").error
'refresh_token=***'

Events are typed (:mod:`exoimap.audit.events`); the log is hash-chained and keyed
(:mod:`exoimap.audit.log`, tamper model in its docstring); :func:`verify_log` checks it.
The key is always handed in (:mod:`exoimap.auth.audit_key` finds it): audit sits below auth
and imports nothing from it.
"""

from __future__ import annotations

from exoimap.audit.auditor import (
    AuditKey,
    Auditor,
    Listener,
    acting_as,
    auditing,
    current_auditor,
    emit,
    new_correlation_id,
    open_auditor,
    os_user,
    set_auditor,
    use_auditor,
)
from exoimap.audit.events import (
    EVENT_NAMES,
    OUTCOMES,
    AccessDenied,
    AccountSynced,
    ArchiveExported,
    ArchiveRead,
    ArchiveRestored,
    ArchiveVerified,
    AuditEvent,
    AuditRecovered,
    ConfigChanged,
    ConsoleAccess,
    ConsoleApproval,
    ConsoleBreakGlass,
    ConsoleSearch,
    FolderSynced,
    ImapAuthenticated,
    ImapAuthFailed,
    ImapClosed,
    ImapConnected,
    ImapThrottled,
    MailSubmitted,
    Outcome,
    SyncChange,
    TokenFailed,
    TokenHandedOut,
    TokenRefreshed,
    TokenRequested,
    VaultChanged,
    WatchStateChanged,
    WorkerJob,
    WorkerLeaseLost,
)
from exoimap.audit.log import AuditLog, AuditRecord, read_records
from exoimap.audit.verify import Problem, VerifyResult, verify_log

__all__ = [
    "EVENT_NAMES",
    "OUTCOMES",
    "AccessDenied",
    "AccountSynced",
    "WatchStateChanged",
    "WorkerJob",
    "WorkerLeaseLost",
    "ArchiveExported",
    "ArchiveRead",
    "ArchiveRestored",
    "ArchiveVerified",
    "AuditEvent",
    "AuditKey",
    "AuditLog",
    "AuditRecord",
    "AuditRecovered",
    "Auditor",
    "ConfigChanged",
    "ConsoleAccess",
    "ConsoleApproval",
    "ConsoleBreakGlass",
    "ConsoleSearch",
    "FolderSynced",
    "SyncChange",
    "ImapAuthFailed",
    "ImapAuthenticated",
    "ImapClosed",
    "ImapConnected",
    "ImapThrottled",
    "MailSubmitted",
    "Listener",
    "Outcome",
    "Problem",
    "TokenFailed",
    "TokenHandedOut",
    "TokenRefreshed",
    "TokenRequested",
    "VaultChanged",
    "VerifyResult",
    "acting_as",
    "auditing",
    "current_auditor",
    "emit",
    "new_correlation_id",
    "open_auditor",
    "os_user",
    "read_records",
    "set_auditor",
    "use_auditor",
    "verify_log",
]
