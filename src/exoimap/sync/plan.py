"""Pure planning: (sync state, source listing, target listing, policy) -> actions.

Nothing here does I/O, so every rule is tested with plain data. The engine
(:mod:`exoimap.sync.engine`) gathers the inputs, calls these functions and carries out the
actions (or, in plan-only mode, only reports them). The rules are the same in every
direction; they are worded for a backup (source -> archive), the most common one. "Origin"
and "gone" are what the :class:`~exoimap.store.base.SyncState` remembers about each target
message.

Rules:

* A source message is *anchored* when an archive message records it as its origin
  (same source UIDVALIDITY and UID). Anchored messages get the source's flags.
* Source messages without an anchor are fetched, except when they match an archive
  message whose origin is unknown or stale (after a source UIDVALIDITY change, a folder
  rename that changed UIDVALIDITY, or an index rebuilt from the files): they match by
  Message-ID plus exact size (or Message-ID plus internal date when the source's sizes are
  estimates), and the archive message is re-pointed instead of downloaded again. What is
  still fetched in that situation is compared by SHA-256 and size at commit time
  (``adopt_unanchored``), so even messages without a Message-ID are not stored twice.
* An anchored archive message whose source message now lists another internal date, or
  another size when both sides' sizes are exact, holds content the source no longer has
  under that UID (a server that lost its store and refilled it under the same
  UIDVALIDITY): the source message is fetched again and the archive message is kept,
  marked gone, no longer anchored (expunged with ``mirror=True``). Only a backup follows
  content (:attr:`SyncPolicy.follow_content`).
* An anchored archive message whose source UID is gone is marked gone (kept), or expunged
  with ``mirror=True``. Unanchored archive messages that matched nothing are treated the
  same way once the fetch is done.
* When the target cannot keep keywords (Exchange), flags are compared on what it can keep,
  so a resync does not try to set the same keyword again every time.
* Folders: a source folder is stored under the same name in the target (the source's
  delimiter becomes the target's; the target's delimiter inside a source name segment
  becomes a stand-in: U+2215 DIVISION SLASH for ``/``, U+2024 ONE DOT LEADER for ``.``). A
  new source folder whose UIDVALIDITY equals the last recorded UIDVALIDITY of exactly one
  archive folder that vanished from the source is a rename: the archive folder is renamed,
  nothing is downloaded again. When UIDVALIDITY changed too, a new folder whose
  Message-IDs mostly (at least half) match those of exactly one vanished folder is a rename
  as well (:func:`match_by_content`); its messages are then matched again by Message-ID.
  Vanished folders are marked gone (kept), or deleted with ``mirror=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from exoimap.store.base import (
    FolderInfo,
    FolderSyncRecord,
    MessageInfo,
    MessageListing,
    MessageRef,
    SpecialUse,
    is_inbox,
)
from exoimap.sync.windows import WINDOW_MESSAGES

__all__ = [
    "FolderPlan",
    "MessagePlan",
    "MessageRules",
    "SyncPolicy",
    "apply_content_renames",
    "match_by_content",
    "needs_rematch",
    "plan_folders",
    "plan_messages",
    "target_name",
]

#: What stands for the target's delimiter inside a source name segment.
_STANDINS = {"/": "\u2215", ".": "\u2024"}


@dataclass(frozen=True, slots=True)
class SyncPolicy:
    """How a sync behaves (in any direction)."""

    #: Delete from the target what was deleted on the source (default: keep, mark gone).
    mirror: bool = False
    #: Messages per group commit (one fsync round and one index transaction).
    batch_messages: int = 500
    #: About how many messages of a folder are listed and planned at once (see
    #: :mod:`exoimap.sync.windows`): memory stays flat however large the folder.
    window_messages: int = WINDOW_MESSAGES
    #: How many folders are worked on at once (also capped by the stores' capabilities).
    max_parallel_folders: int = 4
    #: Which source folders to back up (``None``: all selectable ones).
    include: Callable[[str], bool] | None = None
    #: The target folder of a source folder, ``None`` to leave it out (default: the same
    #: name, see :func:`target_name`). A restore puts folders under ``Restored <date>/``,
    #: a migration maps them by role.
    folder_map: Callable[[FolderInfo, str], str | None] | None = None
    #: Which source messages to copy (``None``: all). Asked with the source's detailed
    #: listing (size, internal date, Message-ID, ``gone_at``). Messages already copied keep
    #: getting their flag changes whatever this says.
    select: Callable[[MessageInfo], bool] | None = None
    #: Follow deletions on the source (mark gone, or expunge with ``mirror``): a backup
    #: does; a restore or a migration only ever adds to the target.
    track_deletions: bool = True
    #: Skip source messages larger than this many bytes (as listed), reported with the
    #: reason; ``None``: the target's own limit (``Capabilities.max_message_size``).
    max_message_size: int | None = None
    #: Notice a source message whose content changed under the same UID (its internal
    #: date, or its size where both sides' sizes are exact) and fetch it again, keeping
    #: the old copy marked gone: a backup does; a restore or a migration only adds.
    follow_content: bool = True

    def target_folder(self, info: FolderInfo, delimiter: str) -> str | None:
        """Where the source folder ``info`` goes on a target with ``delimiter``."""
        if self.folder_map is not None:
            return self.folder_map(info, delimiter)
        return target_name(info.name, info.delimiter, delimiter)


@dataclass(slots=True)
class FolderPlan:
    """Folder-level actions, in the order the engine applies them."""

    renames: list[tuple[str, str]] = field(default_factory=list)
    creates: list[tuple[str, SpecialUse | None]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    #: (source name, target name) of every folder to sync.
    pairs: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class MessagePlan:
    """Message-level actions for one folder."""

    fetch: list[int] = field(default_factory=list)
    #: target UID -> the source's flags
    flags: dict[int, frozenset[str]] = field(default_factory=dict)
    #: target UID -> new origin (re-matched after a UIDVALIDITY change)
    origins: dict[int, MessageRef] = field(default_factory=dict)
    #: target UIDs seen deleted on the source (mark gone, or expunge when mirroring)
    gone: list[int] = field(default_factory=list)
    #: unanchored target UIDs that matched nothing: gone unless adopted by the fetch
    gone_unless_adopted: list[int] = field(default_factory=list)
    #: let the target adopt unanchored messages with the same bytes during the fetch
    adopt_unanchored: bool = False
    #: source UID -> why it is not copied (larger than the target takes)
    skipped: dict[int, str] = field(default_factory=dict)
    #: target UID -> source UID whose content changed: the target message is kept as gone
    #: (not anchored) and the source message fetched again
    replaced: dict[int, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.fetch or self.flags or self.origins or self.gone)


def target_name(source_name: str, source_delimiter: str | None, target_delimiter: str = "/") -> str:
    """The target folder name for a source folder (``INBOX`` stays ``INBOX``)."""
    if is_inbox(source_name):
        return "INBOX"
    parts = source_name.split(source_delimiter) if source_delimiter else [source_name]
    standin = _STANDINS.get(target_delimiter, "_")
    return target_delimiter.join(p.replace(target_delimiter, standin) for p in parts)


def plan_folders(
    source: Sequence[FolderInfo],
    source_uidvalidity: Mapping[str, int],
    known: Sequence[FolderSyncRecord],
    policy: SyncPolicy,
    *,
    target_existing: Iterable[str] = (),
    target_delimiter: str = "/",
) -> FolderPlan:
    """Pair source folders with target folders; detect renames, new and vanished folders.

    ``known`` is what the sync state remembers, ``target_existing`` the folders the target
    has (a target folder the state does not know is used as it is, never renamed or marked
    gone). ``source_uidvalidity`` needs entries only for source folders new to the target.
    """
    plan = FolderPlan()
    wanted, present = _wanted_folders(source, policy, target_delimiter)
    names = {a.name for a in known} | set(target_existing)
    if not policy.track_deletions:
        present |= {a.name for a in known}  # nothing vanishes: no renames, nothing gone
    vanished = {
        a.name: a
        for a in known
        if a.name not in present and not is_inbox(a.name) and a.gone_at is None
    }
    new = sorted(
        (n for n in wanted if n not in names), key=lambda n: (n.count(target_delimiter), n)
    )
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
            for before in [n for n in names if _within(n, old, target_delimiter)]:
                names.discard(before)
                names.add(name + before[len(old) :])
                vanished.pop(before, None)
            continue
        plan.creates.append((name, wanted[name].role))
        names.add(name)
    if policy.track_deletions:
        for name in sorted(vanished):
            (plan.deletes if policy.mirror else plan.gone).append(name)
    plan.pairs = [(info.name, name) for name, info in sorted(wanted.items())]
    return plan


def _wanted_folders(
    source: Sequence[FolderInfo], policy: SyncPolicy, delimiter: str
) -> tuple[dict[str, FolderInfo], set[str]]:
    """Target name -> source folder of every folder to sync, and every target name the
    source still has: also folders left out by ``include``, folders that cannot be selected,
    and the parents of every folder (never "gone" while it exists)."""
    wanted: dict[str, FolderInfo] = {}
    present: set[str] = set()
    for info in source:
        mapped = policy.target_folder(info, delimiter)
        name = mapped if mapped is not None else target_name(info.name, info.delimiter, delimiter)
        parts = name.split(delimiter)
        present.update(delimiter.join(parts[:depth]) for depth in range(1, len(parts) + 1))
        if mapped is None or not info.selectable:
            continue
        if policy.include and not policy.include(info.name):
            continue
        wanted[name] = info
    return wanted, present


def _within(name: str, parent: str, delimiter: str) -> bool:
    return name == parent or name.startswith(parent + delimiter)


def needs_rematch(archive: Sequence[MessageInfo], source_uidvalidity: int) -> bool:
    """True when some archive message has an unknown or stale origin."""
    for message in archive:
        origin = message.origin
        if message.gone_at is None and (origin is None or origin.uidvalidity != source_uidvalidity):
            return True
    return False


@dataclass(frozen=True, slots=True)
class MessageRules:
    """What decides a folder's message plan besides the two listings."""

    #: The source's sizes are exact (Exchange: estimates), for matching by Message-ID.
    exact_sizes: bool = True
    #: The flags the target can keep when it cannot keep keywords (``None``: all).
    keep_flags: frozenset[str] | None = None
    #: Which source messages to copy (``None``: all); see :attr:`SyncPolicy.select`.
    select: Callable[[MessageInfo], bool] | None = None
    #: Larger source messages are skipped (``None``: no limit).
    max_size: int | None = None
    #: Deletions on the source are followed (see :attr:`SyncPolicy.track_deletions`).
    track_deletions: bool = True
    #: Content changed under the same UID is fetched again (:attr:`SyncPolicy.follow_content`).
    follow_content: bool = False
    #: Both sides' sizes are exact: a different size means different content.
    sizes_comparable: bool = False


def plan_messages(
    source_uidvalidity: int,
    source: MessageListing,
    target: Sequence[MessageInfo],
    rules: MessageRules | None = None,
) -> MessagePlan:
    """The actions that make one target folder match one source folder.

    ``target`` carries the sync state's ``origin`` and ``gone_at`` (and, to follow content
    changes, with ``source``: size and internal date)."""
    rules = rules or MessageRules()
    plan = MessagePlan()
    anchored, unanchored = _split_by_anchor(target, source_uidvalidity)
    candidates: list[MessageInfo] = []
    keep = rules.keep_flags
    for message in source.messages:
        stored = anchored.get(message.uid)
        if stored is None:
            if _wanted(message, rules, plan):
                candidates.append(message)
            continue
        if rules.follow_content and _content_changed(message, stored, rules.sizes_comparable):
            if _wanted(message, rules, plan):
                plan.replaced[stored.uid] = message.uid
            continue
        flags = message.flags if keep is None else message.flags & keep
        if stored.flags != flags:
            plan.flags[stored.uid] = flags
    if unanchored and candidates:
        _rematch(plan, source_uidvalidity, candidates, unanchored, rules)
    else:
        plan.fetch = [m.uid for m in candidates]
        if rules.track_deletions:
            plan.gone_unless_adopted = [m.uid for m in unanchored]
    if rules.track_deletions:
        plan.gone = _gone(source, anchored)
    plan.fetch += plan.replaced.values()
    plan.fetch.sort()
    return plan


def _content_changed(source: MessageInfo, stored: MessageInfo, sizes_comparable: bool) -> bool:
    """Whether the source message lists another internal date, or another exact size,
    than the copy made of it (unknown values compare as equal)."""
    dates = source.internal_date, stored.internal_date
    if None not in dates and dates[0] != dates[1]:
        return True
    return (
        sizes_comparable
        and source.size is not None
        and stored.size is not None
        and source.size != stored.size
    )


def _wanted(message: MessageInfo, rules: MessageRules, plan: MessagePlan) -> bool:
    """Whether a source message not on the target yet is to be copied (or why not)."""
    if rules.select is not None and not rules.select(message):
        return False
    if rules.max_size is not None and (message.size or 0) > rules.max_size:
        plan.skipped[message.uid] = (
            f"{message.size} bytes, more than the target takes ({rules.max_size} bytes)"
        )
        return False
    return True


def _split_by_anchor(
    target: Sequence[MessageInfo], source_uidvalidity: int
) -> tuple[dict[int, MessageInfo], list[MessageInfo]]:
    """Source UID -> the target message anchored to it, and the unanchored live messages.
    A no-change resync runs this for every message: kept lean."""
    anchored: dict[int, MessageInfo] = {}
    unanchored: list[MessageInfo] = []
    for message in target:
        origin = message.origin
        if origin is not None and origin.uidvalidity == source_uidvalidity:
            if origin.uid not in anchored:
                anchored[origin.uid] = message
        elif message.gone_at is None:
            unanchored.append(message)
    return anchored, unanchored


def _rematch(
    plan: MessagePlan,
    source_uidvalidity: int,
    candidates: Sequence[MessageInfo],
    unanchored: Sequence[MessageInfo],
    rules: MessageRules,
) -> None:
    """Re-point unanchored target messages at new source messages with the same
    Message-ID and size (or date); fetch the rest."""
    exact_sizes, keep_flags = rules.exact_sizes, rules.keep_flags
    pool: dict[tuple[object, ...], list[MessageInfo]] = {}
    for stored in unanchored:
        if stored.message_id is not None:
            pool.setdefault(_key(stored, exact_sizes), []).append(stored)
    matched: set[int] = set()
    for message in candidates:
        hits = pool.get(_key(message, exact_sizes)) if message.message_id else None
        if not hits:
            plan.fetch.append(message.uid)
            continue
        stored = hits.pop(0)
        matched.add(stored.uid)
        plan.origins[stored.uid] = MessageRef(source_uidvalidity, message.uid)
        flags = message.flags if keep_flags is None else message.flags & keep_flags
        if stored.flags != flags:
            plan.flags[stored.uid] = flags
    left = [m.uid for m in unanchored if m.uid not in matched]
    plan.adopt_unanchored = bool(left)
    if rules.track_deletions:
        plan.gone_unless_adopted = left


def _gone(source: MessageListing, anchored: Mapping[int, MessageInfo]) -> list[int]:
    """Target UIDs whose source message was deleted (and not yet marked so)."""
    if source.complete:
        present = {m.uid for m in source.messages}
        return sorted(
            stored.uid
            for uid, stored in anchored.items()
            if uid not in present and stored.gone_at is None
        )
    if source.vanished:
        return sorted(
            stored.uid
            for uid, stored in anchored.items()
            if uid in source.vanished and stored.gone_at is None
        )
    return []


def match_by_content(
    new: Mapping[str, set[str]], vanished: Mapping[str, set[str]], *, threshold: float = 0.5
) -> list[tuple[str, str]]:
    """``(vanished, new)`` folder pairs whose Message-IDs mostly agree: the share of common
    IDs in the smaller set is at least ``threshold`` and no other vanished folder ties."""
    pairs: list[tuple[str, str]] = []
    used: set[str] = set()
    for name in sorted(new):
        ids = new[name]
        best: str | None = None
        best_score = 0.0
        tie = False
        for old in sorted(vanished):
            old_ids = vanished[old]
            if old in used or not ids or not old_ids:
                continue
            score = len(ids & old_ids) / min(len(ids), len(old_ids))
            if score > best_score:
                best, best_score, tie = old, score, False
            elif score == best_score and score > 0:
                tie = True
        if best is not None and best_score >= threshold and not tie:
            pairs.append((best, name))
            used.add(best)
    return pairs


def apply_content_renames(
    plan: FolderPlan, pairs: Sequence[tuple[str, str]], delimiter: str = "/"
) -> None:
    """Turn create + gone/delete pairs into renames (children move along)."""
    for old, new in pairs:
        plan.renames.append((old, new))
        created = {name for name, _role in plan.creates}
        for bucket in (plan.gone, plan.deletes):
            for before in [n for n in bucket if _within(n, old, delimiter)]:
                bucket.remove(before)
                after = new + before[len(old) :]
                if after in created:
                    plan.creates = [c for c in plan.creates if c[0] != after]
                else:
                    bucket.append(after)  # a child the source deleted: still gone


def _key(message: MessageInfo, exact_sizes: bool) -> tuple[object, ...]:
    if exact_sizes:
        return (message.message_id, message.size)
    return (message.message_id, message.internal_date)
