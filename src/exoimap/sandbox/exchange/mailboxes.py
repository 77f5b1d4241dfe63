"""The sandbox's mailboxes: one :class:`~exoimap.store.memory.MemoryStore` per user, with
the Exchange business folder set, subscriptions, connection counts and throttle windows.

Optional persistence: with a ``folder`` each mailbox is loaded from and saved to
``<folder>/<upn>/`` (``MemoryStore.save`` format plus ``subscriptions.json``), durably.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from exoimap.errors import ConfigError, StoreError
from exoimap.sandbox.exchange.config import MAX_MESSAGE_SIZE, ExchangeSettings, ThrottlePolicy
from exoimap.sandbox.state import (
    ensure_private_dir,
    read_json,
    write_private_bytes,
    write_private_json,
)
from exoimap.store.archive.files import fsync_dir, fsync_paths
from exoimap.store.base import SYSTEM_FLAGS, Capabilities, SpecialUse
from exoimap.store.memory import EventKind, MemoryStore, StoreEvent

log = logging.getLogger("exoimap.sandbox.exchange")

__all__ = [
    "BUSINESS_FOLDERS",
    "UIDVALIDITY_FILE",
    "Mailbox",
    "Mailboxes",
    "ThrottleWindow",
    "special_use_attribute",
]

#: 1.6 [R]: the folders of an English-locale business mailbox, with their roles.
BUSINESS_FOLDERS: tuple[tuple[str, SpecialUse | None], ...] = (
    ("Archive", SpecialUse.ARCHIVE),
    ("Calendar", None),
    ("Contacts", None),
    ("Conversation History", None),
    ("Deleted Items", SpecialUse.TRASH),
    ("Drafts", SpecialUse.DRAFTS),
    ("Journal", None),
    ("Junk Email", SpecialUse.JUNK),
    ("Notes", None),
    ("Outbox", None),
    ("Sent Items", SpecialUse.SENT),
    ("Tasks", None),
)

_ATTRIBUTES = {
    SpecialUse.SENT: "\\Sent",
    SpecialUse.DRAFTS: "\\Drafts",
    SpecialUse.TRASH: "\\Trash",
    SpecialUse.JUNK: "\\Junk",
}


def special_use_attribute(role: SpecialUse | None) -> str | None:
    """1.6 [C]: ``\\Sent \\Drafts \\Trash \\Junk``; Archive gets none."""
    return _ATTRIBUTES.get(role) if role is not None else None


def exchange_capabilities(settings: ExchangeSettings) -> Capabilities:
    return Capabilities(
        condstore=False,
        qresync=False,
        uidplus=True,
        move=True,
        custom_keywords=False,
        permanent_flags=SYSTEM_FLAGS | {"$MDNSent"},
        exact_sizes=not settings.estimated_rfc822_size,
        max_connections=settings.max_connections_per_mailbox,
        # what the store itself takes; APPEND enforces each mailbox's receive size
        max_message_size=MAX_MESSAGE_SIZE,
    )


@dataclass(slots=True)
class ThrottleWindow:
    """Messages and bytes served or stored in the current sliding window."""

    policy: ThrottlePolicy
    events: collections.deque[tuple[float, int, int]] = field(default_factory=collections.deque)

    def _trim(self, now: float) -> None:
        horizon = now - self.policy.window_seconds
        while self.events and self.events[0][0] <= horizon:
            self.events.popleft()

    def over_limit(self, now: float) -> bool:
        if not self.policy.enabled:
            return False
        self._trim(now)
        messages = sum(e[1] for e in self.events)
        size = sum(e[2] for e in self.events)
        return (self.policy.max_messages is not None and messages >= self.policy.max_messages) or (
            self.policy.max_bytes is not None and size >= self.policy.max_bytes
        )

    def charge(self, now: float, messages: int, size: int) -> None:
        if self.policy.enabled and (messages or size):
            self.events.append((now, messages, size))


@dataclass(slots=True)
class Mailbox:
    upn: str
    store: MemoryStore
    subscribed: set[str]
    throttle: ThrottleWindow
    #: Largest message APPEND takes, in bytes (``Set-Mailbox -MaxReceiveSize``).
    max_receive_size: int = MAX_MESSAGE_SIZE
    connections: int = 0


class Mailboxes:
    """Every mailbox of the sandbox, created on first use.

    With a ``folder``, mailboxes are loaded from and saved to ``<folder>/<upn>/``. With a
    ``uidvalidity_file``, no UIDVALIDITY is ever handed out twice for different content:
    the file keeps a floor above every UIDVALIDITY handed out so far (written before a
    client can see the new value); a mailbox made afresh (its files lost or never saved,
    or ``persist`` off) numbers its folders from that floor; and a saved mailbox whose
    ``unsaved`` marker says it changed after its last save (a crash lost those changes,
    which clients may have seen) comes back under new UIDVALIDITYs, so clients resync.
    """

    def __init__(
        self,
        settings: ExchangeSettings,
        folder: Path | None = None,
        *,
        uidvalidity_file: Path | None = None,
    ) -> None:
        self.settings = settings
        self.folder = ensure_private_dir(folder) if folder is not None else None
        self.uidvalidity_file = uidvalidity_file
        self._floor = _read_floor(uidvalidity_file, settings.uidvalidity_start)
        self._boxes: dict[str, Mailbox] = {}
        self._marked: set[str] = set()  # mailboxes whose ``unsaved`` marker is on disk
        #: Some mailbox changed since the last :meth:`save`.
        self.dirty = False

    def get(self, upn: str) -> Mailbox:
        key = upn.lower()
        box = self._boxes.get(key)
        if box is None:
            box = self._load(key) or self._new(key)
            self._boxes[key] = box
            self._reserve(box.store)
            box.store.add_listener(functools.partial(self._changed, box))
            self.dirty = True
        return box

    def _changed(self, box: Mailbox, event: StoreEvent) -> None:
        self.dirty = True
        path = self._path(box.upn)
        if path is not None and box.upn not in self._marked:
            # Before the client hears of the change: a crash from now until the next save
            # loses it, and the next start must know (see the class docstring).
            ensure_private_dir(path)
            write_private_bytes(path / _UNSAVED_MARKER, b"")
            self._marked.add(box.upn)
        if event.kind in (EventKind.FOLDER_CREATED, EventKind.UIDVALIDITY):
            self._reserve(box.store)

    def _reserve(self, store: MemoryStore) -> None:
        """Raise the floor above every UIDVALIDITY of ``store``, durably."""
        top = max((store.record(n).uidvalidity for n in store.folder_names()), default=0)
        if top >= self._floor:
            self._floor = top + 1
            if self.uidvalidity_file is not None:
                write_private_json(self.uidvalidity_file, {"floor": self._floor})

    def __contains__(self, upn: str) -> bool:
        return upn.lower() in self._boxes

    def all(self) -> list[Mailbox]:
        return list(self._boxes.values())

    def _new(self, upn: str) -> Mailbox:
        store = MemoryStore(
            uidvalidity_start=self._floor,
            capabilities=exchange_capabilities(self.settings),
        )
        for name, role in BUSINESS_FOLDERS:
            store.create_folder_now(name, role=role)
        return Mailbox(
            upn,
            store,
            set(store.folder_names()),
            ThrottleWindow(self.settings.throttle),
            self.settings.receive_size(upn),
        )

    def _path(self, upn: str) -> Path | None:
        if self.folder is None:
            return None
        if "/" in upn or upn.startswith("."):
            raise StoreError(f"invalid mailbox name {upn!r}")
        return self.folder / upn

    def _load(self, upn: str) -> Mailbox | None:
        path = self._path(upn)
        if path is None or not (path / "index.json").exists():
            return None
        store = MemoryStore.load(path, capabilities=exchange_capabilities(self.settings))
        try:
            subscribed = set(json.loads((path / "subscriptions.json").read_text("utf-8")))
        except (OSError, ValueError):
            subscribed = set(store.folder_names())
        if (path / _UNSAVED_MARKER).exists():
            log.warning(
                "the mailbox %s changed after its last save and those changes were lost; "
                "it comes back under new UIDVALIDITYs so that clients resync",
                upn,
            )
            store = self._renumbered(store)
            self._marked.add(upn)  # the marker stays until the renumbered mailbox is saved
        return Mailbox(
            upn,
            store,
            subscribed,
            ThrottleWindow(self.settings.throttle),
            self.settings.receive_size(upn),
        )

    def _renumbered(self, old: MemoryStore) -> MemoryStore:
        """A copy of ``old`` whose folders all have UIDVALIDITYs from the floor up."""
        store = MemoryStore(
            uidvalidity_start=self._floor,
            capabilities=exchange_capabilities(self.settings),
            create_inbox=False,
        )
        for name in old.folder_names():  # sorted: parents before children
            record = old.record(name)
            if name not in store.folder_names():
                store.create_folder_now(name, role=record.role)
            for uid in sorted(record.messages):
                message = record.messages[uid]
                store.add_message(
                    name, message.data, flags=message.flags, internal_date=message.internal_date
                )
        return store

    def save(self) -> None:
        """Write every mailbox to the state folder durably (no-op without one)."""
        self.dirty = False
        for box in self._boxes.values():
            path = self._path(box.upn)
            if path is None:
                return
            ensure_private_dir(path)
            _save_durably(box.store, path)
            write_private_json(path / "subscriptions.json", sorted(box.subscribed))
            if box.upn in self._marked:
                (path / _UNSAVED_MARKER).unlink(missing_ok=True)
                fsync_dir(path)
                self._marked.discard(box.upn)


#: ``<state>/uidvalidity.json``: ``{"floor": N}``, above every UIDVALIDITY handed out.
UIDVALIDITY_FILE = "uidvalidity.json"
#: ``<mailbox>/unsaved``: the mailbox changed after its last save.
_UNSAVED_MARKER = "unsaved"


def _read_floor(path: Path | None, start: int) -> int:
    if path is None or not path.exists():
        return start
    document = read_json(path)
    floor = document.get("floor") if isinstance(document, dict) else None
    if not isinstance(floor, int) or floor < 1:
        raise ConfigError("no valid UIDVALIDITY floor", path=str(path))
    return max(floor, start)


def _save_durably(store: MemoryStore, path: Path) -> None:
    """``MemoryStore.save`` made crash-safe: new blobs reach the disk before the index that
    names them, and the index replaces the old one in a single rename.

    The store writes into a staging folder whose ``blobs`` is a link to the real one, so
    blobs already saved are not copied again and new ones land in place."""
    blobs = path / "blobs"
    blobs.mkdir(mode=0o700, exist_ok=True)
    staging = path / ".saving"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    (staging / "blobs").symlink_to(Path("..") / "blobs")
    before = set(os.listdir(blobs))
    store.save(staging)
    added = [blobs / name for name in set(os.listdir(blobs)) - before]
    fsync_paths([*added, staging / "index.json"])
    if added:
        fsync_dir(blobs)
    os.replace(staging / "index.json", path / "index.json")
    fsync_dir(path)
    shutil.rmtree(staging)
