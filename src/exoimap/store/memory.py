"""The in-memory reference store (and the mailbox behind the sandbox IMAP server).

Everything lives in dictionaries; behaviour follows IMAP: per-folder UIDVALIDITY (small
integers from a configurable start) and UIDNEXT, ascending UIDs never reused, system flags
and keywords, internal dates, append / copy / move / expunge, rename (children move too),
MODSEQ per change so CONDSTORE/QRESYNC listings work, and a way to reset a folder's
UIDVALIDITY (renumbering its UIDs) to test clients against it.

Change notifications: :meth:`MemoryStore.add_listener` registers a plain callable that is
called synchronously with a :class:`StoreEvent` after each change (a new message, expunged
messages, flag changes, folder created / renamed / deleted / UIDVALIDITY reset). An IMAP
IDLE session can push these into its own :class:`asyncio.Queue`; :meth:`MemoryStore.watch`
does exactly that.

Persistence (optional, no pickle): :meth:`MemoryStore.save` writes ``index.json`` plus one
file per distinct message body under ``blobs/`` (named by SHA-256, written once);
:meth:`MemoryStore.load` reads it back.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import enum
import hashlib
import json
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exoimap.errors import FolderError, FolderNotFound, MessageError, StoreError
from exoimap.protocol.headers import parse_message_id
from exoimap.store.base import (
    AppendItem,
    Capabilities,
    FetchedMessage,
    FolderInfo,
    FolderState,
    MessageInfo,
    MessageListing,
    SpecialUse,
    UidRange,
    chunks_of,
    folder_states_one_by_one,
    is_inbox,
    normalize_flags,
)

__all__ = [
    "EventKind",
    "FolderRecord",
    "MemoryFolder",
    "MemoryStore",
    "MessageRecord",
    "StoreEvent",
]

_FORMAT_VERSION = 1


class EventKind(enum.Enum):
    """What changed (see :class:`StoreEvent`)."""

    EXISTS = "exists"  # a message was added (uid)
    EXPUNGE = "expunge"  # messages were removed (uids)
    FLAGS = "flags"  # a message's flags changed (uid, flags)
    FOLDER_CREATED = "folder_created"
    FOLDER_DELETED = "folder_deleted"
    FOLDER_RENAMED = "folder_renamed"  # folder is the old name, new_name the new one
    UIDVALIDITY = "uidvalidity"  # the folder's UIDVALIDITY was reset; UIDs renumbered


@dataclass(frozen=True, slots=True)
class StoreEvent:
    """One change in a :class:`MemoryStore`."""

    kind: EventKind
    folder: str
    uids: tuple[int, ...] = ()
    flags: frozenset[str] | None = None
    new_name: str | None = None


@dataclass(slots=True)
class MessageRecord:
    """One stored message (see :meth:`MemoryStore.record`)."""

    data: bytes
    flags: frozenset[str]
    internal_date: _dt.datetime
    modseq: int
    message_id: str | None


@dataclass(slots=True)
class FolderRecord:
    """One folder's live state: messages by UID, role, UIDVALIDITY, UIDNEXT, MODSEQ."""

    name: str
    role: SpecialUse | None
    uidvalidity: int
    uidnext: int = 1
    messages: dict[int, MessageRecord] = field(default_factory=dict)
    highest_modseq: int = 1
    # (modseq, uid) of expunges, for QRESYNC-style VANISHED answers
    expunged: list[tuple[int, int]] = field(default_factory=list)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


class MemoryStore:
    """A complete store in memory; see the module docstring."""

    def __init__(
        self,
        *,
        delimiter: str = "/",
        uidvalidity_start: int = 1,
        capabilities: Capabilities | None = None,
        chunk_size: int = 65536,
        create_inbox: bool = True,
    ) -> None:
        self._delimiter = delimiter
        self._next_uidvalidity = uidvalidity_start
        self._caps = capabilities or Capabilities(
            condstore=True, qresync=True, uidplus=True, move=True, max_connections=8
        )
        self.chunk_size = chunk_size
        self._folders: dict[str, FolderRecord] = {}
        self._listeners: list[Callable[[StoreEvent], None]] = []
        if create_inbox:
            self._create("INBOX", SpecialUse.INBOX)

    # --- Store protocol --------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def delimiter(self) -> str:
        return self._delimiter

    async def list_folders(self) -> list[FolderInfo]:
        return [
            FolderInfo(name=f.name, delimiter=self._delimiter, role=f.role)
            for f in sorted(self._folders.values(), key=lambda f: f.name)
        ]

    async def folder_state(self, name: str) -> FolderState:
        return self._state(self._get(name))

    async def folder_states(self, names: Sequence[str]) -> dict[str, FolderState]:
        return await folder_states_one_by_one(self, names)

    @asynccontextmanager
    async def _open(self, name: str) -> AsyncIterator[MemoryFolder]:
        yield MemoryFolder(self, self._get(name).name)

    def open_folder(self, name: str) -> AbstractAsyncContextManager[MemoryFolder]:
        """Open ``name``; an async context manager yielding a :class:`MemoryFolder`."""
        return self._open(name)

    async def create_folder(self, name: str, *, role: SpecialUse | None = None) -> None:
        self.create_folder_now(name, role=role)

    async def rename_folder(self, old: str, new: str) -> None:
        self.rename_folder_now(old, new)

    async def delete_folder(self, name: str) -> None:
        self.delete_folder_now(name)

    async def close(self) -> None:
        return None

    # --- synchronous API (seeding, the sandbox server) --------------------------------

    def folder_names(self) -> list[str]:
        return sorted(self._folders)

    def create_folder_now(self, name: str, *, role: SpecialUse | None = None) -> None:
        """Create ``name`` and any missing parents."""
        if not name or name.startswith(self._delimiter) or name.endswith(self._delimiter):
            raise FolderError(f"invalid folder name {name!r}", folder=name)
        if self._find(name) is not None:
            raise FolderError(f"folder {name!r} already exists", folder=name)
        parts = name.split(self._delimiter)
        for depth in range(1, len(parts)):
            parent = self._delimiter.join(parts[:depth])
            if self._find(parent) is None:
                self._create(parent, None)
        self._create(name, role)

    def rename_folder_now(self, old: str, new: str) -> None:
        folder = self._get(old)
        if is_inbox(old):
            raise FolderError("INBOX cannot be renamed", folder=old)
        if self._find(new) is not None:
            raise FolderError(f"cannot rename {old!r}: {new!r} already exists", folder=old)
        prefix = folder.name + self._delimiter
        moving = [f for f in self._folders.values() if f.name.startswith(prefix)]
        del self._folders[folder.name]
        folder.name = new
        self._folders[new] = folder
        for child in moving:
            del self._folders[child.name]
            child.name = new + child.name[len(prefix) - 1 :]
            self._folders[child.name] = child
        self._emit(StoreEvent(EventKind.FOLDER_RENAMED, old, new_name=new))

    def delete_folder_now(self, name: str) -> None:
        folder = self._get(name)
        if is_inbox(name):
            raise FolderError("INBOX cannot be deleted", folder=name)
        del self._folders[folder.name]
        self._emit(StoreEvent(EventKind.FOLDER_DELETED, folder.name))

    def add_message(
        self,
        folder: str,
        data: bytes,
        *,
        flags: Sequence[str] | frozenset[str] = (),
        internal_date: _dt.datetime | None = None,
    ) -> int:
        """Append ``data`` now; returns its UID."""
        target = self._get(folder)
        limit = self._caps.max_message_size
        if limit is not None and len(data) > limit:
            raise MessageError(
                f"message of {len(data)} bytes exceeds the {limit}-byte limit", folder=folder
            )
        uid = target.uidnext
        target.uidnext += 1
        target.highest_modseq += 1
        date = (internal_date or _now()).replace(microsecond=0)
        if date.tzinfo is None:
            raise MessageError("internal date must be timezone-aware", folder=folder)
        target.messages[uid] = MessageRecord(
            data=data,
            flags=self._keep_flags(normalize_flags(flags)),
            internal_date=date,
            modseq=target.highest_modseq,
            message_id=parse_message_id(data),
        )
        self._emit(StoreEvent(EventKind.EXISTS, target.name, uids=(uid,)))
        return uid

    def replace_content_now(
        self,
        folder: str,
        uid: int,
        data: bytes,
        *,
        internal_date: _dt.datetime | None = None,
    ) -> None:
        """A fault no IMAP server may commit: other bytes (and ``internal_date``, if
        given) under an existing UID, as a server that lost its store and refilled it under
        the same UIDVALIDITY would show. The message's MODSEQ rises."""
        target = self._get(folder)
        message = target.messages.get(uid)
        if message is None:
            raise MessageError(f"no message with UID {uid}", folder=folder, uid=uid)
        target.highest_modseq += 1
        message.data = data
        message.message_id = parse_message_id(data)
        message.modseq = target.highest_modseq
        if internal_date is not None:
            message.internal_date = internal_date.replace(microsecond=0)

    def message_bytes(self, folder: str, uid: int) -> bytes:
        """The stored bytes of one message (MessageError when missing)."""
        message = self._get(folder).messages.get(uid)
        if message is None:
            raise MessageError(f"no message with UID {uid}", folder=folder, uid=uid)
        return message.data

    def store_flags(
        self, folder: str, uids: Sequence[int], flags: frozenset[str], mode: str = "set"
    ) -> dict[int, frozenset[str]]:
        """IMAP STORE: ``mode`` is ``set``, ``add`` or ``remove``; returns the new flags."""
        target = self._get(folder)
        wanted = self._keep_flags(normalize_flags(flags))
        changed: dict[int, frozenset[str]] = {}
        for uid in uids:
            message = target.messages.get(uid)
            if message is None:
                continue
            if mode == "add":
                new = message.flags | wanted
            elif mode == "remove":
                new = message.flags - wanted
            elif mode == "set":
                new = wanted
            else:
                raise StoreError(f"unknown flag mode {mode!r}", folder=folder)
            if new != message.flags:
                target.highest_modseq += 1
                message.flags = new
                message.modseq = target.highest_modseq
                self._emit(StoreEvent(EventKind.FLAGS, target.name, uids=(uid,), flags=new))
            changed[uid] = new
        return changed

    def expunge_now(self, folder: str, uids: Sequence[int] | None = None) -> list[int]:
        """Remove ``uids`` (or, when ``None``, every message flagged ``\\Deleted``)."""
        target = self._get(folder)
        if uids is None:
            gone = [u for u, m in target.messages.items() if "\\Deleted" in m.flags]
        else:
            gone = sorted(u for u in set(uids) if u in target.messages)
        if gone:
            target.highest_modseq += 1
            for uid in gone:
                del target.messages[uid]
                target.expunged.append((target.highest_modseq, uid))
            self._emit(StoreEvent(EventKind.EXPUNGE, target.name, uids=tuple(gone)))
        return gone

    def copy_now(self, folder: str, uids: Sequence[int], dest: str) -> dict[int, int]:
        """Copy messages; returns old UID -> new UID (COPYUID)."""
        source = self._get(folder)
        self._get(dest)
        mapping: dict[int, int] = {}
        for uid in sorted(set(uids)):
            message = source.messages.get(uid)
            if message is None:
                continue
            mapping[uid] = self.add_message(
                dest, message.data, flags=message.flags, internal_date=message.internal_date
            )
        return mapping

    def move_now(self, folder: str, uids: Sequence[int], dest: str) -> dict[int, int]:
        """Move messages (copy, then expunge the originals)."""
        mapping = self.copy_now(folder, uids, dest)
        self.expunge_now(folder, list(mapping))
        return mapping

    def reset_uidvalidity(self, folder: str, uidvalidity: int | None = None) -> int:
        """Give ``folder`` a new UIDVALIDITY and renumber its messages from 1."""
        target = self._get(folder)
        if uidvalidity is None:
            uidvalidity = self._take_uidvalidity()
        if uidvalidity == target.uidvalidity:
            raise FolderError("the new UIDVALIDITY must differ from the old one", folder=folder)
        target.uidvalidity = uidvalidity
        old = [target.messages[u] for u in sorted(target.messages)]
        target.messages = dict(enumerate(old, start=1))
        target.uidnext = len(old) + 1
        target.expunged.clear()
        self._emit(StoreEvent(EventKind.UIDVALIDITY, target.name))
        return uidvalidity

    # --- notifications ----------------------------------------------------------------

    def add_listener(self, listener: Callable[[StoreEvent], None]) -> Callable[[], None]:
        """Call ``listener`` after every change; returns a function that unregisters it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    @asynccontextmanager
    async def watch(self) -> AsyncIterator[asyncio.Queue[StoreEvent]]:
        """``async with store.watch() as queue``: every change is put on ``queue``."""
        queue: asyncio.Queue[StoreEvent] = asyncio.Queue()
        remove = self.add_listener(queue.put_nowait)
        try:
            yield queue
        finally:
            remove()

    # --- persistence --------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the store to ``directory`` (``index.json`` + ``blobs/<sha256>``)."""
        root = Path(directory)
        blobs = root / "blobs"
        blobs.mkdir(parents=True, exist_ok=True)
        folders: list[dict[str, Any]] = []
        for folder in sorted(self._folders.values(), key=lambda f: f.name):
            messages = []
            for uid, message in sorted(folder.messages.items()):
                digest = hashlib.sha256(message.data).hexdigest()
                blob = blobs / digest
                if not blob.exists():
                    tmp = blobs / f".{digest}.tmp"
                    tmp.write_bytes(message.data)
                    os.replace(tmp, blob)
                messages.append(
                    {
                        "uid": uid,
                        "sha256": digest,
                        "flags": sorted(message.flags),
                        "internal_date": message.internal_date.isoformat(),
                        "modseq": message.modseq,
                    }
                )
            folders.append(
                {
                    "name": folder.name,
                    "role": folder.role.value if folder.role else None,
                    "uidvalidity": folder.uidvalidity,
                    "uidnext": folder.uidnext,
                    "highest_modseq": folder.highest_modseq,
                    "messages": messages,
                }
            )
        index = {
            "format": _FORMAT_VERSION,
            "delimiter": self._delimiter,
            "next_uidvalidity": self._next_uidvalidity,
            "folders": folders,
        }
        tmp_index = root / ".index.json.tmp"
        tmp_index.write_text(json.dumps(index, indent=1), encoding="utf-8")
        os.replace(tmp_index, root / "index.json")

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        capabilities: Capabilities | None = None,
        chunk_size: int = 65536,
    ) -> MemoryStore:
        """Read a store written by :meth:`save`."""
        root = Path(directory)
        try:
            index = json.loads((root / "index.json").read_text(encoding="utf-8"))
            if index.get("format") != _FORMAT_VERSION:
                raise StoreError(f"{root}: unsupported mailbox format {index.get('format')!r}")
            store = cls(
                delimiter=index["delimiter"],
                uidvalidity_start=index["next_uidvalidity"],
                capabilities=capabilities,
                chunk_size=chunk_size,
                create_inbox=False,
            )
            for entry in index["folders"]:
                folder = FolderRecord(
                    name=entry["name"],
                    role=SpecialUse(entry["role"]) if entry["role"] else None,
                    uidvalidity=entry["uidvalidity"],
                    uidnext=entry["uidnext"],
                    highest_modseq=entry["highest_modseq"],
                )
                for item in entry["messages"]:
                    data = (root / "blobs" / item["sha256"]).read_bytes()
                    folder.messages[item["uid"]] = MessageRecord(
                        data=data,
                        flags=frozenset(item["flags"]),
                        internal_date=_dt.datetime.fromisoformat(item["internal_date"]),
                        modseq=item["modseq"],
                        message_id=parse_message_id(data),
                    )
                store._folders[folder.name] = folder
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"cannot load the mailbox in {root}: {exc}") from exc
        return store

    # --- internals ----------------------------------------------------------------------

    def _take_uidvalidity(self) -> int:
        value = self._next_uidvalidity
        self._next_uidvalidity += 1
        return value

    def _create(self, name: str, role: SpecialUse | None) -> None:
        self._folders[name] = FolderRecord(
            name=name, role=role, uidvalidity=self._take_uidvalidity()
        )
        self._emit(StoreEvent(EventKind.FOLDER_CREATED, name))

    def _find(self, name: str) -> FolderRecord | None:
        if is_inbox(name):
            for key, folder in self._folders.items():
                if is_inbox(key):
                    return folder
            return None
        return self._folders.get(name)

    def record(self, name: str) -> FolderRecord:
        """The live record of a folder, for servers built on this store (the sandbox IMAP
        server reads messages, role and UIDVALIDITY without copying). Read it, never change
        it: every change goes through the store's methods so listeners hear of it."""
        return self._get(name)

    def _get(self, name: str) -> FolderRecord:
        folder = self._find(name)
        if folder is None:
            raise FolderNotFound(f"folder {name!r} does not exist", folder=name)
        return folder

    def _keep_flags(self, flags: frozenset[str]) -> frozenset[str]:
        if self._caps.custom_keywords:
            return flags
        return flags & self._caps.permanent_flags

    def _state(self, folder: FolderRecord) -> FolderState:
        return FolderState(
            name=folder.name,
            uidvalidity=folder.uidvalidity,
            uidnext=folder.uidnext,
            exists=len(folder.messages),
            highest_modseq=folder.highest_modseq if self._caps.condstore else None,
        )

    def _emit(self, event: StoreEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def _messages(self, name: str) -> Iterator[tuple[int, MessageRecord]]:
        folder = self._get(name)
        yield from sorted(folder.messages.items())


class MemoryFolder:
    """An open folder of a :class:`MemoryStore` (implements :class:`Folder`)."""

    def __init__(self, store: MemoryStore, name: str) -> None:
        self._store = store
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def state(self) -> FolderState:
        return await self._store.folder_state(self._name)

    async def list_messages(
        self,
        *,
        changed_since: int | None = None,
        detail: bool = False,
        size_and_date: bool | frozenset[int] = False,
        uids: UidRange | None = None,
    ) -> MessageListing:
        store = self._store
        folder = store._get(self._name)
        caps = store.capabilities
        incremental = changed_since is not None and caps.condstore
        infos: list[MessageInfo] = []
        for uid, message in sorted(folder.messages.items()):
            if incremental and changed_since is not None and message.modseq <= changed_since:
                continue
            if uids is not None and uid not in uids:
                continue
            info = MessageInfo(
                uid=uid,
                flags=message.flags,
                modseq=message.modseq if caps.condstore else None,
            )
            if detail or size_and_date is True or (size_and_date and uid in size_and_date):
                info.size = len(message.data)
                info.internal_date = message.internal_date
            if detail:
                info.message_id = message.message_id
            infos.append(info)
        vanished: frozenset[int] | None = None
        if incremental and caps.qresync and changed_since is not None:
            vanished = frozenset(
                uid
                for seq, uid in folder.expunged
                if seq > changed_since and (uids is None or uid in uids)
            )
        return MessageListing(
            state=store._state(folder),
            messages=infos,
            complete=not incremental,
            vanished=vanished,
        )

    async def fetch(self, uids: Sequence[int]) -> AsyncIterator[FetchedMessage]:
        folder = self._store._get(self._name)
        for uid in sorted(set(uids)):
            message = folder.messages.get(uid)
            if message is None:
                continue
            yield FetchedMessage(
                uid=uid,
                flags=message.flags,
                internal_date=message.internal_date,
                size=len(message.data),
                chunks=chunks_of(message.data, self._store.chunk_size),
            )
            await asyncio.sleep(0)

    async def append(self, items: AsyncIterable[AppendItem]) -> list[int]:
        uids: list[int] = []
        async for item in items:
            parts = [chunk async for chunk in item.chunks]
            data = b"".join(parts)
            if len(data) != item.size:
                raise MessageError(
                    f"append: got {len(data)} bytes but {item.size} were announced",
                    folder=self._name,
                )
            uids.append(
                self._store.add_message(
                    self._name, data, flags=item.flags, internal_date=item.internal_date
                )
            )
        return uids

    async def set_flags(self, changes: Mapping[int, frozenset[str]]) -> None:
        for uid, flags in changes.items():
            self._store.store_flags(self._name, [uid], flags, "set")

    async def expunge(self, uids: Sequence[int]) -> None:
        self._store.expunge_now(self._name, uids)
