"""Pure planning: (recorded state, source listing, target listing, policy) -> actions.

Nothing here does I/O, so every rule is tested with plain data. The engine
(:mod:`exoimap.sync.engine`) gathers the inputs, calls these functions and carries out the
actions.

Backup rules (source -> archive):

* A source message is *anchored* when an archive message records it as its origin
  (same source UIDVALIDITY and UID). Anchored messages get the source's flags.
* Source messages without an anchor are fetched, except when they match an archive
  message whose origin is unknown or stale (after a source UIDVALIDITY change, a folder
  rename that changed UIDVALIDITY, or an index rebuilt from the files): they match by
  Message-ID plus exact size (or Message-ID plus internal date when the source's sizes are
  estimates), and the archive message is re-pointed instead of downloaded again. What is
  still fetched in that situation is compared by SHA-256 and size at commit time
  (``adopt_unanchored``), so even messages without a Message-ID are not stored twice.
* An anchored archive message whose source UID is gone is marked gone (kept), or expunged
  with ``mirror=True``. Unanchored archive messages that matched nothing are treated the
  same way once the fetch is done.
* Folders: a source folder is stored under the same name in the archive (the source's
  delimiter becomes ``/``; a ``/`` inside a source name segment becomes U+2215 DIVISION SLASH). A
  new source folder whose UIDVALIDITY equals the last recorded UIDVALIDITY of exactly one
  archive folder that vanished from the source is a rename: the archive folder is renamed,
  nothing is downloaded again. Vanished folders are marked gone (kept), or deleted with
  ``mirror=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from exoimap.store.base import (
    FolderInfo,
    MessageInfo,
    MessageListing,
    MessageRef,
    SpecialUse,
    is_inbox,
)

__all__ = [
    "ArchivedFolder",
    "BackupPolicy",
    "FolderPlan",
    "MessagePlan",
    "archive_name",
    "needs_rematch",
    "plan_folders",
    "plan_messages",
]

_SLASH_STANDIN = "\u2215"


@dataclass(frozen=True, slots=True)
class BackupPolicy:
    """How a backup behaves."""

    #: Delete from the archive what was deleted on the source (default: keep, mark gone).
    mirror: bool = False
    #: Messages per group commit (one fsync round and one index transaction).
    batch_messages: int = 500
    #: How many folders are worked on at once (also capped by the stores' capabilities).
    max_parallel_folders: int = 4
    #: Which source folders to back up (``None``: all selectable ones).
    include: Callable[[str], bool] | None = None


@dataclass(frozen=True, slots=True)
class ArchivedFolder:
    """What the archive remembers about one of its folders."""

    name: str
    source_uidvalidity: int | None
    gone: bool


@dataclass(slots=True)
class FolderPlan:
    """Folder-level actions, in the order the engine applies them."""

    renames: list[tuple[str, str]] = field(default_factory=list)
    creates: list[tuple[str, SpecialUse | None]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    #: (source name, archive name) of every folder to sync.
    pairs: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class MessagePlan:
    """Message-level actions for one folder."""

    fetch: list[int] = field(default_factory=list)
    #: archive UID -> the source's flags
    flags: dict[int, frozenset[str]] = field(default_factory=dict)
    #: archive UID -> new origin (re-matched after a UIDVALIDITY change)
    origins: dict[int, MessageRef] = field(default_factory=dict)
    #: archive UIDs seen deleted on the source (mark gone, or expunge when mirroring)
    gone: list[int] = field(default_factory=list)
    #: unanchored archive UIDs that matched nothing: gone unless adopted by the fetch
    gone_unless_adopted: list[int] = field(default_factory=list)
    #: let the archive adopt unanchored messages with the same bytes during the fetch
    adopt_unanchored: bool = False

    @property
    def empty(self) -> bool:
        return not (self.fetch or self.flags or self.origins or self.gone)


def archive_name(source_name: str, source_delimiter: str | None) -> str:
    """The archive folder name for a source folder."""
    if is_inbox(source_name):
        return "INBOX"
    if not source_delimiter or source_delimiter == "/":
        return source_name
    parts = source_name.split(source_delimiter)
    return "/".join(p.replace("/", _SLASH_STANDIN) for p in parts)


def plan_folders(
    source: Sequence[FolderInfo],
    source_uidvalidity: dict[str, int],
    archive: Sequence[ArchivedFolder],
    policy: BackupPolicy,
) -> FolderPlan:
    """Pair source folders with archive folders; detect renames, new and vanished folders.

    ``source_uidvalidity`` needs entries only for source folders not yet in the archive.
    """
    plan = FolderPlan()
    wanted: dict[str, FolderInfo] = {}
    # folders left out by ``include`` still exist on the source: never "vanished"
    listed: set[str] = set()
    for info in source:
        if not info.selectable:
            continue
        listed.add(archive_name(info.name, info.delimiter))
        if policy.include and not policy.include(info.name):
            continue
        wanted[archive_name(info.name, info.delimiter)] = info
    names = {a.name for a in archive}
    vanished = {
        a.name: a for a in archive if a.name not in listed and not is_inbox(a.name) and not a.gone
    }
    new = sorted((n for n in wanted if n not in names), key=lambda n: (n.count("/"), n))
    for name in new:
        if name in names:  # arrived with a renamed parent
            continue
        uidvalidity = source_uidvalidity.get(wanted[name].name)
        candidates = [
            v for v in vanished.values() if uidvalidity and v.source_uidvalidity == uidvalidity
        ]
        same = [n for n in new if source_uidvalidity.get(wanted[n].name) == uidvalidity]
        if len(candidates) == 1 and len(same) == 1:
            old = candidates[0].name
            plan.renames.append((old, name))
            moved = [n for n in names if n == old or n.startswith(old + "/")]
            for before in moved:
                after = name + before[len(old) :]
                names.discard(before)
                names.add(after)
                vanished.pop(before, None)
            continue
        plan.creates.append((name, wanted[name].role))
        names.add(name)
    for name in sorted(vanished):
        (plan.deletes if policy.mirror else plan.gone).append(name)
    plan.pairs = [(info.name, name) for name, info in sorted(wanted.items())]
    return plan


def _anchored(message: MessageInfo, uidvalidity: int) -> bool:
    return message.origin is not None and message.origin.uidvalidity == uidvalidity


def needs_rematch(archive: Sequence[MessageInfo], source_uidvalidity: int) -> bool:
    """True when some archive message has an unknown or stale origin."""
    return any(not _anchored(m, source_uidvalidity) for m in archive if m.gone_at is None)


def plan_messages(
    source_uidvalidity: int,
    source: MessageListing,
    archive: Sequence[MessageInfo],
    *,
    exact_sizes: bool,
) -> MessagePlan:
    """The actions that make one archive folder match one source folder (backup)."""
    plan = MessagePlan()
    anchored: dict[int, MessageInfo] = {}
    unanchored: list[MessageInfo] = []
    for message in archive:
        if message.origin is not None and _anchored(message, source_uidvalidity):
            anchored.setdefault(message.origin.uid, message)
        elif message.gone_at is None:
            unanchored.append(message)
    candidates: list[MessageInfo] = []
    for message in source.messages:
        stored = anchored.get(message.uid)
        if stored is None:
            candidates.append(message)
        elif stored.flags != message.flags:
            plan.flags[stored.uid] = message.flags
    if unanchored and candidates:
        pool: dict[tuple[object, ...], list[MessageInfo]] = {}
        for stored in unanchored:
            if stored.message_id is not None:
                pool.setdefault(_key(stored, exact_sizes), []).append(stored)
        matched: set[int] = set()
        for message in candidates:
            hits = pool.get(_key(message, exact_sizes)) if message.message_id else None
            if hits:
                stored = hits.pop(0)
                matched.add(stored.uid)
                plan.origins[stored.uid] = MessageRef(source_uidvalidity, message.uid)
                if stored.flags != message.flags:
                    plan.flags[stored.uid] = message.flags
            else:
                plan.fetch.append(message.uid)
        plan.gone_unless_adopted = [m.uid for m in unanchored if m.uid not in matched]
        plan.adopt_unanchored = bool(plan.gone_unless_adopted)
    else:
        plan.fetch = [m.uid for m in candidates]
        plan.gone_unless_adopted = [m.uid for m in unanchored]
    if source.complete:
        present = {m.uid for m in source.messages}
        plan.gone = sorted(
            stored.uid
            for uid, stored in anchored.items()
            if uid not in present and stored.gone_at is None
        )
    elif source.vanished:
        plan.gone = sorted(
            stored.uid
            for uid, stored in anchored.items()
            if uid in source.vanished and stored.gone_at is None
        )
    plan.fetch.sort()
    return plan


def _key(message: MessageInfo, exact_sizes: bool) -> tuple[object, ...]:
    if exact_sizes:
        return (message.message_id, message.size)
    return (message.message_id, message.internal_date)
