"""The sandbox's mailboxes: one :class:`~exoimap.store.memory.MemoryStore` per user, with
the Exchange business folder set, subscriptions, connection counts and throttle windows.

Optional persistence: with a ``folder`` each mailbox is loaded from and saved to
``<folder>/<upn>/`` (``MemoryStore.save`` format plus ``subscriptions.json``).
"""

from __future__ import annotations

import collections
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from exoimap.errors import StoreError
from exoimap.sandbox.exchange.config import ExchangeSettings, ThrottlePolicy
from exoimap.sandbox.state import ensure_private_dir
from exoimap.store.base import SYSTEM_FLAGS, Capabilities, SpecialUse
from exoimap.store.memory import MemoryStore

__all__ = ["BUSINESS_FOLDERS", "Mailbox", "Mailboxes", "ThrottleWindow", "special_use_attribute"]

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
        max_message_size=settings.max_message_size,
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
    connections: int = 0


class Mailboxes:
    """Every mailbox of the sandbox, created on first use."""

    def __init__(self, settings: ExchangeSettings, folder: Path | None = None) -> None:
        self.settings = settings
        self.folder = ensure_private_dir(folder) if folder is not None else None
        self._boxes: dict[str, Mailbox] = {}

    def get(self, upn: str) -> Mailbox:
        key = upn.lower()
        box = self._boxes.get(key)
        if box is None:
            box = self._load(key) or self._new(key)
            self._boxes[key] = box
        return box

    def __contains__(self, upn: str) -> bool:
        return upn.lower() in self._boxes

    def all(self) -> list[Mailbox]:
        return list(self._boxes.values())

    def _new(self, upn: str) -> Mailbox:
        store = MemoryStore(
            uidvalidity_start=self.settings.uidvalidity_start,
            capabilities=exchange_capabilities(self.settings),
        )
        for name, role in BUSINESS_FOLDERS:
            store.create_folder_now(name, role=role)
        return Mailbox(
            upn, store, set(store.folder_names()), ThrottleWindow(self.settings.throttle)
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
        return Mailbox(upn, store, subscribed, ThrottleWindow(self.settings.throttle))

    def save(self) -> None:
        """Write every mailbox to the state folder (no-op without one)."""
        for box in self._boxes.values():
            path = self._path(box.upn)
            if path is None:
                return
            ensure_private_dir(path)
            box.store.save(path)
            tmp = path / ".subscriptions.json.tmp"
            tmp.write_text(json.dumps(sorted(box.subscribed)), encoding="utf-8")
            os.replace(tmp, path / "subscriptions.json")
