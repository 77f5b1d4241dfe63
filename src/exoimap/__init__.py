"""exoimap: OAuth2 + IMAP access to Microsoft 365 / Exchange Online mailboxes.

The public API is what ``__all__`` lists; everything else is private and may change.
Names are imported on first use, so ``import exoimap`` stays cheap (the CLI's start-up
time is part of a no-change backup's time).
"""

from __future__ import annotations

import importlib

# Not even typing is imported here: ``import exoimap`` is on the path of every command,
# including the few milliseconds in which a sync is handed to a running agent.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from exoimap.errors import ExoimapError
    from exoimap.secrets import Secret

_LAZY: dict[str, str] = {
    "ExoimapError": "exoimap.errors",
    "Secret": "exoimap.secrets",
    "load_config": "exoimap.config",
    "Paths": "exoimap.config",
    "TokenProvider": "exoimap.auth.provider",
    "Vault": "exoimap.auth.vault",
    "RemoteImapStore": "exoimap.store.remote",
    "ArchiveStore": "exoimap.store.archive",
    "MemoryStore": "exoimap.store.memory",
    "MemorySyncState": "exoimap.store.sync_state",
    "sync": "exoimap.sync",
    "SyncPolicy": "exoimap.sync",
    "backup": "exoimap.app",
    "plan_backup": "exoimap.app",
    "verify_archive": "exoimap.app",
    "SyncOptions": "exoimap.app",
    "sync_accounts": "exoimap.app",
    "verify_account": "exoimap.app",
}

__all__ = [
    "ExoimapError",
    "Secret",
    "__version__",
    "ArchiveStore",
    "MemoryStore",
    "MemorySyncState",
    "Paths",
    "RemoteImapStore",
    "SyncOptions",
    "SyncPolicy",
    "TokenProvider",
    "Vault",
    "backup",
    "load_config",
    "plan_backup",
    "sync",
    "sync_accounts",
    "verify_account",
    "verify_archive",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("exoimap")
        except PackageNotFoundError:  # pragma: no cover - a source tree without install
            value = "0.0.0+unknown"
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'exoimap' has no attribute {name!r}")
    globals()[name] = value
    return value
