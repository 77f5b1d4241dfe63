"""exoimap.store: mail stores behind one protocol (see :mod:`exoimap.store.base`)."""

from exoimap.store.archive import ArchiveFolder, ArchiveStore
from exoimap.store.base import (
    AppendItem,
    Capabilities,
    FetchedMessage,
    Folder,
    FolderInfo,
    FolderState,
    MessageInfo,
    MessageListing,
    MessageRef,
    SpecialUse,
    Store,
)
from exoimap.store.memory import MemoryStore

__all__ = [
    "AppendItem",
    "ArchiveFolder",
    "ArchiveStore",
    "Capabilities",
    "FetchedMessage",
    "Folder",
    "FolderInfo",
    "FolderState",
    "MemoryStore",
    "MessageInfo",
    "MessageListing",
    "MessageRef",
    "SpecialUse",
    "Store",
]
