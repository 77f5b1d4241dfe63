"""exoimap.sync: the one engine that moves mail between any two stores.

:func:`sync` makes a target store match a source store through a
:class:`~exoimap.store.base.SyncState` (:mod:`exoimap.sync.engine`), planned by pure
functions (:mod:`exoimap.sync.plan`); :func:`verify` compares a target with its source
and :func:`repair` fetches again what it found differing.
It imports only :mod:`exoimap.store.base` and :mod:`exoimap.errors`: backups, restores and
migrations of configured accounts live in :mod:`exoimap.app`.
"""

from exoimap.sync.engine import sync
from exoimap.sync.plan import SyncPolicy
from exoimap.sync.repair import repair
from exoimap.sync.report import EventHook, FolderReport, Progress, SyncEvent, SyncReport
from exoimap.sync.verify import FolderCheck, VerifyReport, verify

__all__ = [
    "EventHook",
    "FolderCheck",
    "FolderReport",
    "Progress",
    "SyncEvent",
    "SyncPolicy",
    "SyncReport",
    "VerifyReport",
    "repair",
    "sync",
    "verify",
]
