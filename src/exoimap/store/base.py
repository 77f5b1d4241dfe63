"""The store abstraction: what the sync engine may ask of any mail store.

A *store* holds folders of messages with UIDs: Exchange Online over IMAP
(:mod:`exoimap.store.remote`), the local archive (:mod:`exoimap.store.archive`) and the
in-memory reference store (:mod:`exoimap.store.memory`). The sync engine sees only these
protocols and treats both sides alike.

Contract (every implementation passes :mod:`exoimap.store.conformance`):

Names
    Folder names are ``str`` (Unicode, already decoded from modified UTF-7), full paths
    whose segments are joined by :attr:`Store.delimiter`. ``"INBOX"`` is the inbox in every
    store and is matched case-insensitively, like IMAP.

UIDs
    Inside one folder, a message is named by ``MessageRef(uidvalidity, uid)``. UIDs are
    positive, strictly ascending in the order messages were added, and never reused while
    ``uidvalidity`` stays the same. A new ``uidvalidity`` means every old UID is void.
    ``FolderState.uidnext`` is greater than every UID ever given in that folder.

Flags
    ``frozenset[str]`` of IMAP flag atoms: the system flags spelled as in :data:`SYSTEM_FLAGS`
    (``\\Seen``, ...) and keywords (``$Forwarded``, ``work``). ``\\Recent`` is never part of
    a store's flags. A store whose :attr:`Capabilities.custom_keywords` is false may drop
    keywords outside :attr:`Capabilities.permanent_flags` silently (Exchange keeps only
    the system flags and ``$MDNSent``).

Dates
    Internal dates are timezone-aware :class:`datetime.datetime` with whole seconds.

Bodies are streams
    :meth:`Folder.fetch` takes MANY UIDs and yields one :class:`FetchedMessage` per UID
    that still exists, in ascending UID order; UIDs that no longer exist are skipped
    silently. Each body arrives as an async iterator of ``bytes`` chunks, so memory stays
    bounded whatever the size. The consumer must finish (or abandon) one message's
    ``chunks`` before asking for the next message; a store drains what was not read.
    Concatenated, the chunks are exactly ``BODY[]`` and ``size`` is its exact length.
    :meth:`Folder.append` takes an async iterable of :class:`AppendItem` (each again a chunk
    stream with its exact ``size``, as IMAP APPEND needs the literal length up front) and
    returns the new UIDs in the same order. A store may group the items (pipelined APPENDs,
    or one durable group commit in the archive): when ``append`` returns, every item is
    stored durably; if it raises, a prefix of the items may be stored.

Counters
    :meth:`Store.folder_states` gives the counters of many folders at once; with
    CONDSTORE, an unchanged ``(uidvalidity, uidnext, highest_modseq)`` means nothing in
    the folder changed (no new, changed or expunged message), so a resync can skip it
    without opening it.

Listing
    :meth:`Folder.list_messages` returns ``(uid, flags)`` for all messages, plus size and
    internal date when ``size_and_date`` (of all, or of a sample of UIDs: RFC822.SIZE and
    INTERNALDATE on IMAP, cheap for a sample, not free for every message),
    and also the Message-ID when ``detail=True`` (more expensive on IMAP). With
    ``changed_since=modseq`` a store that supports CONDSTORE/QRESYNC may return only the
    messages changed since then, with ``complete=False`` and the expunged UIDs in
    ``vanished`` when it knows them; a store that cannot, returns everything with
    ``complete=True``.

Errors
    Every failure is an :class:`exoimap.errors.StoreError` subclass whose ``scope`` says
    whether one message, one folder or the whole store is affected, and whose
    ``retryable`` says whether trying again may help: :class:`~exoimap.errors.MessageError`,
    :class:`~exoimap.errors.FolderError` / :class:`~exoimap.errors.FolderNotFound`,
    :class:`~exoimap.errors.StoreUnavailable`, :class:`~exoimap.errors.StoreLocked`,
    :class:`~exoimap.errors.DiskFull`. Network-level errors of a remote store are raised as
    they are (:class:`~exoimap.errors.NetworkError` is retryable).

Origins (optional)
    A store that can remember where a message came from (``Capabilities.records_origin``,
    the archive) stores :attr:`AppendItem.origin` atomically with the message and returns it
    as :attr:`MessageInfo.origin`; the sync engine keeps its backup state that way, so a
    crash can never separate a stored message from the record of where it came from.

Sync state
    What a sync remembers between runs about one source -> target pair is a
    :class:`SyncState`: per target folder the source folder's counters at the last sync
    and whether the source folder is gone; per target message the source message it came
    from (``origin``) and whether that was deleted on the source (``gone_at``); and the
    *content check*: which target messages lost their content outside any sync (the
    archive: a message file deleted by hand) and whether a folder's content is known to be
    untouched since it was last checked; and which target messages no longer hold what
    their source message holds (:meth:`SyncState.content_replaced`). The archive implements
    it atomically in its index (``ArchiveStore.sync_state()``);
    :class:`exoimap.store.memory.MemorySyncState` keeps it in memory for any other target.
    The engine talks to the target only through :class:`Store` and to its memory only
    through :class:`SyncState`.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from exoimap.errors import FolderNotFound

__all__ = [
    "SYSTEM_FLAGS",
    "AppendItem",
    "Capabilities",
    "FetchedMessage",
    "Folder",
    "FolderInfo",
    "FolderState",
    "MessageInfo",
    "MessageListing",
    "MessageRef",
    "ContentMatching",
    "FolderSyncRecord",
    "SpecialUse",
    "Store",
    "SyncState",
    "UidRange",
    "WindowedState",
    "chunks_of",
    "folder_states_one_by_one",
    "is_inbox",
    "normalize_flags",
]

#: The IMAP system flags, in their canonical spelling. ``\\Recent`` is session state, not
#: a stored flag, so it is not here.
SYSTEM_FLAGS: frozenset[str] = frozenset(
    {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"}
)
_CANONICAL = {f.lower(): f for f in SYSTEM_FLAGS}


#: Flag sets already normalized: a mailbox has few distinct ones, and every message passes
#: through here (bounded, for a server that sends endless keyword combinations).
_NORMALIZED: dict[tuple[str, ...] | frozenset[str], frozenset[str]] = {}


def normalize_flags(flags: Sequence[str] | frozenset[str] | set[str]) -> frozenset[str]:
    """Spell system flags canonically (IMAP flags are case-insensitive) and drop ``\\Recent``."""
    key = flags if isinstance(flags, (tuple, frozenset)) else None
    if key is not None and (known := _NORMALIZED.get(key)) is not None:
        return known
    out: set[str] = set()
    for flag in flags:
        low = flag.lower()
        if low == "\\recent":
            continue
        out.add(_CANONICAL.get(low, flag))
    normalized = frozenset(out)
    if key is not None and len(_NORMALIZED) < 4096:
        _NORMALIZED[key] = normalized
    return normalized


def is_inbox(name: str) -> bool:
    """``INBOX`` is case-insensitive in IMAP; every other name is case-sensitive."""
    return name.upper() == "INBOX"


class SpecialUse(enum.Enum):
    """A folder's role (RFC 6154 special-use, plus the inbox)."""

    INBOX = "inbox"
    SENT = "sent"
    DRAFTS = "drafts"
    TRASH = "trash"
    JUNK = "junk"
    ARCHIVE = "archive"


@dataclass(frozen=True, slots=True)
class MessageRef:
    """One message: its UID, valid only together with the folder's UIDVALIDITY."""

    uidvalidity: int
    uid: int


@dataclass(frozen=True, slots=True)
class UidRange:
    """The UIDs ``first`` to ``last`` of a folder (``last`` ``None``: to the newest)."""

    first: int
    last: int | None = None

    def __contains__(self, uid: int) -> bool:
        return uid >= self.first and (self.last is None or uid <= self.last)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a store can do; the engine adapts to these instead of guessing."""

    #: CONDSTORE: per-message MODSEQ and ``list_messages(changed_since=...)``.
    condstore: bool = False
    #: QRESYNC: ``changed_since`` listings also report expunged UIDs (``vanished``).
    qresync: bool = False
    #: UIDPLUS: the server reports new UIDs (APPENDUID/COPYUID). ``append`` must return the
    #: UIDs either way; without UIDPLUS a store finds them another way (UIDNEXT before and
    #: after when nothing else appends, or a search by Message-ID).
    uidplus: bool = True
    #: MOVE is atomic on the server.
    move: bool = False
    #: Arbitrary keywords can be stored (PERMANENTFLAGS has ``\\*``).
    custom_keywords: bool = True
    #: Flags kept permanently when ``custom_keywords`` is false.
    permanent_flags: frozenset[str] = SYSTEM_FLAGS
    #: ``MessageInfo.size`` from a listing equals the exact BODY[] length (Exchange: estimate).
    exact_sizes: bool = True
    #: The store keeps :attr:`AppendItem.origin` with each message (see :class:`SyncState`).
    records_origin: bool = False
    #: How many folders may be worked on at once (IMAP: connections allowed).
    max_connections: int = 4
    #: Largest message ``append`` accepts, in bytes; ``None`` when unlimited.
    max_message_size: int | None = None
    #: Flags the store ignores when they come with an appended message (Exchange drops
    #: ``\\Flagged``): whoever appends sets them again afterwards.
    append_drops_flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """One folder as listed (LIST): name, hierarchy delimiter, role, whether selectable."""

    name: str
    delimiter: str | None
    role: SpecialUse | None = None
    selectable: bool = True
    #: Archive only: when the folder was last seen gone from the source.
    gone_at: _dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class FolderState:
    """A folder's counters, cheap to get (STATUS / SELECT)."""

    name: str
    uidvalidity: int
    uidnext: int
    exists: int
    #: HIGHESTMODSEQ when the store supports CONDSTORE, else ``None``.
    highest_modseq: int | None = None


@dataclass(slots=True)  # not frozen: listings build one per message, and frozen is slower
class MessageInfo:
    """A message's metadata. ``size``, ``internal_date``, ``message_id`` may be ``None``
    unless the listing was asked for ``detail``; ``message_id`` is ``None`` when the
    message has no Message-ID header."""

    uid: int
    flags: frozenset[str]
    size: int | None = None
    internal_date: _dt.datetime | None = None
    message_id: str | None = None
    modseq: int | None = None
    #: Stores with ``records_origin``: where the message was copied from.
    origin: MessageRef | None = None
    #: Archive only: when the message was seen gone from the source.
    gone_at: _dt.datetime | None = None
    #: Archive only: hex SHA-256 of the stored bytes.
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class MessageListing:
    """The answer of :meth:`Folder.list_messages`.

    ``complete`` is true when ``messages`` holds every message in the folder; otherwise it
    holds those changed since the asked modseq and ``vanished`` the UIDs expunged since
    then (``None`` when the store cannot tell)."""

    state: FolderState
    messages: list[MessageInfo]
    complete: bool = True
    vanished: frozenset[int] | None = None


@dataclass(slots=True)
class FetchedMessage:
    """One message from :meth:`Folder.fetch`; ``chunks`` yields exactly ``size`` bytes."""

    uid: int
    flags: frozenset[str]
    internal_date: _dt.datetime
    size: int
    chunks: AsyncIterator[bytes]


@dataclass(slots=True)
class AppendItem:
    """One message to append: exactly ``size`` bytes from ``chunks``."""

    chunks: AsyncIterable[bytes]
    size: int
    flags: frozenset[str] = frozenset()
    internal_date: _dt.datetime | None = None
    #: Where this message came from (kept by stores with ``records_origin``).
    origin: MessageRef | None = None
    #: Message-ID, when the caller knows it (saves the store parsing headers).
    message_id: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Folder(Protocol):
    """An open folder (on IMAP: a connection with the folder selected)."""

    @property
    def name(self) -> str: ...

    async def state(self) -> FolderState:
        """Fresh counters (IMAP: NOOP / STATUS)."""
        ...

    async def list_messages(
        self,
        *,
        changed_since: int | None = None,
        detail: bool = False,
        size_and_date: bool | frozenset[int] = False,
        uids: UidRange | None = None,
    ) -> MessageListing:
        """Flags of every message (or those changed since ``changed_since``); with
        ``size_and_date`` also their size and internal date (``True``: of every message;
        a set of UIDs: at least of those), with ``detail`` also size, date and Message-ID.
        With ``uids`` only the messages in that range, and ``complete`` and ``vanished``
        speak of that range only."""
        ...

    def fetch(self, uids: Sequence[int]) -> AsyncIterator[FetchedMessage]:
        """Stream the bodies of ``uids`` (ascending; missing UIDs skipped)."""
        ...

    async def append(self, items: AsyncIterable[AppendItem]) -> list[int]:
        """Store every item; return their new UIDs in order (durable on return)."""
        ...

    async def set_flags(self, changes: Mapping[int, frozenset[str]]) -> None:
        """Replace the flags of each UID (missing UIDs are ignored)."""
        ...

    async def expunge(self, uids: Sequence[int]) -> None:
        """Remove these messages for good (missing UIDs are ignored)."""
        ...


class Store(Protocol):
    """A mail store: folders of messages with UIDs."""

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def delimiter(self) -> str:
        """The hierarchy delimiter used in folder names."""
        ...

    async def list_folders(self) -> list[FolderInfo]:
        """Every folder (selectable or not)."""
        ...

    async def folder_state(self, name: str) -> FolderState:
        """One folder's counters without opening it for work (IMAP: STATUS)."""
        ...

    async def folder_states(self, names: Sequence[str]) -> dict[str, FolderState]:
        """The counters of many folders at once (IMAP: pipelined STATUS, one round trip),
        keyed by the names asked for. A folder that does not exist is left out."""
        ...

    def open_folder(self, name: str) -> AbstractAsyncContextManager[Folder]:
        """Open a folder for work; raises FolderNotFound when it does not exist."""
        ...

    async def create_folder(self, name: str, *, role: SpecialUse | None = None) -> None:
        """Create a folder (and missing parents); FolderError if it exists."""
        ...

    async def rename_folder(self, old: str, new: str) -> None:
        """Rename a folder and its children, keeping UIDVALIDITY and UIDs."""
        ...

    async def delete_folder(self, name: str) -> None:
        """Delete a folder and its messages (not its children)."""
        ...

    async def close(self) -> None:
        """Release connections, locks and files; idempotent."""
        ...


@runtime_checkable
class ContentMatching(Protocol):
    """An optional folder operation (the archive): append, but recognise content it holds.

    An item whose bytes equal a message of the folder whose origin is unknown or stale
    (after a source UIDVALIDITY change, or an index rebuilt from files) is not stored
    twice: that message is re-pointed at the item's origin and its UID returned."""

    async def append_matching(self, items: AsyncIterable[AppendItem]) -> list[int]: ...


@runtime_checkable
class WindowedState(Protocol):
    """An optional :class:`SyncState` ability (the archive, from its index): answer for a
    range of source UIDs, so a sync or a verify holds one window of a large folder in
    memory at a time instead of the whole folder."""

    async def anchored_messages(
        self,
        folder: Folder,
        source_uidvalidity: int,
        uids: UidRange,
        *,
        detail: bool = False,
        size_and_date: bool = False,
    ) -> list[MessageInfo]:
        """The messages of the open target ``folder`` whose origin is a UID in ``uids``
        under ``source_uidvalidity``, ordered by target UID, filled in as
        :meth:`SyncState.messages` fills them."""
        ...

    async def has_unanchored(self, folder: Folder, source_uidvalidity: int) -> bool:
        """Whether a live message of ``folder`` has no origin under ``source_uidvalidity``
        (then the folder is matched by Message-ID, as a whole)."""
        ...


@dataclass(frozen=True, slots=True)
class FolderSyncRecord:
    """What a :class:`SyncState` remembers about one target folder."""

    #: The target folder's name.
    name: str
    #: The source folder's UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ after the last sync that
    #: finished it (``None`` before the first; ``modseq`` also ``None`` after a partial one).
    source_uidvalidity: int | None = None
    source_uidnext: int | None = None
    source_modseq: int | None = None
    #: When the source folder was seen gone (its target folder is kept).
    gone_at: _dt.datetime | None = None


class SyncState(Protocol):
    """What a sync remembers about one source -> target pair between runs.

    All folder names are the *target's*. Every method that changes something is durable
    when it returns (for a persistent state) and atomic: a crash leaves it before or after.
    """

    async def begin_run(self, detail: Mapping[str, object]) -> list[str]:
        """A run starts: record it. Returns notes for the report (what recovery did when
        the state was opened, runs that were interrupted before)."""
        ...

    async def end_run(self, summary: Mapping[str, object]) -> None:
        """The run ended (with this summary)."""
        ...

    async def folders(self) -> list[FolderSyncRecord]:
        """Every target folder the state knows (including those whose source is gone)."""
        ...

    async def folder_synced(
        self, name: str, *, uidvalidity: int, uidnext: int, modseq: int | None
    ) -> None:
        """Record the source folder's counters after a sync of ``name`` (clears gone)."""
        ...

    async def folder_gone(self, name: str, when: _dt.datetime) -> None:
        """Record that the source folder of ``name`` was seen deleted."""
        ...

    async def folder_renamed(self, old: str, new: str) -> None:
        """The target folder ``old`` (and its children) was renamed to ``new``."""
        ...

    async def folder_deleted(self, name: str) -> None:
        """The target folder ``name`` was deleted."""
        ...

    async def messages(
        self, folder: Folder, *, detail: bool = False, size_and_date: bool = False
    ) -> list[MessageInfo]:
        """The messages of the open target ``folder`` with ``origin`` and ``gone_at``
        filled in (``size_and_date``: also size and internal date; ``detail``: also those
        and the Message-ID)."""
        ...

    async def will_append(
        self, folder: str, uidnext: int, source_uidvalidity: int, messages: Sequence[MessageInfo]
    ) -> None:
        """Before an append to a target without ``records_origin``: these source messages
        (of ``source_uidvalidity``, listed with size, date and Message-ID) go to
        ``folder``, whose UIDNEXT is ``uidnext``.
        A state that survives a crash records this first, so that its next
        :meth:`messages` recognises what an interrupted append stored (a UID from
        ``uidnext`` on with the same Message-ID and size) instead of appending it again."""
        ...

    async def appended(self, folder: str, origins: Mapping[int, MessageRef]) -> None:
        """Target UIDs just appended, with the source message each came from. A target
        with ``records_origin`` already stored them atomically with the messages."""
        ...

    async def set_origins(self, folder: str, origins: Mapping[int, MessageRef]) -> None:
        """Re-point target messages at new source refs (after a source UIDVALIDITY change)."""
        ...

    async def mark_gone(self, folder: str, uids: Sequence[int], when: _dt.datetime) -> None:
        """Record that the source messages of these target UIDs were deleted at ``when``."""
        ...

    async def forget(self, folder: str, uids: Sequence[int]) -> None:
        """Drop what is known about these target UIDs (expunged, or their content lost)."""
        ...

    async def content_replaced(self, folder: str, uids: Sequence[int], when: _dt.datetime) -> None:
        """The source holds other content now under the origin of these target UIDs (a
        server that lost its store and refilled it under the same UIDVALIDITY): they no
        longer stand for their source message (no origin) and are kept, marked gone at
        ``when``, as what the source held before; the engine then fetches the new content."""
        ...

    async def content_lost(self, folder: str) -> list[int]:
        """Target UIDs whose content went missing outside any sync (the archive: a file
        deleted by hand); the engine forgets and fetches them again."""
        ...

    async def content_unchanged(self, names: Sequence[str]) -> set[str]:
        """Those of ``names`` whose content nothing touched since :meth:`content_checked`
        last recorded it: a resync may skip them without opening them (all at once: a
        store may answer for many folders in one go)."""
        ...

    async def content_checked(self, names: Sequence[str]) -> None:
        """After a sync: remember that these folders' content was complete."""
        ...


async def folder_states_one_by_one(store: Store, names: Sequence[str]) -> dict[str, FolderState]:
    """:meth:`Store.folder_states` for stores where each folder is cheap to ask on its own."""
    states: dict[str, FolderState] = {}
    for name in names:
        try:
            states[name] = await store.folder_state(name)
        except FolderNotFound:
            continue
    return states


async def chunks_of(data: bytes, chunk_size: int = 65536) -> AsyncIterator[bytes]:
    """Yield ``data`` as chunks (helper for callers that already hold the bytes)."""
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]
