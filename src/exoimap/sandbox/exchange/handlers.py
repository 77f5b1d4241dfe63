"""Mailbox commands of the sandbox server: LIST/LSUB/STATUS, SELECT/EXAMINE, folder
management, FETCH/SEARCH/STORE/COPY/MOVE/EXPUNGE, CLOSE/UNSELECT and APPEND."""

from __future__ import annotations

import asyncio
import bisect
import datetime as _dt
import re
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from exoimap.errors import ExoimapError, FolderError, RemoteProtocolError, StoreError
from exoimap.protocol import commands as c
from exoimap.protocol.types import (
    AppendUidCode,
    CopyUidCode,
    OtherCode,
    ResponseCode,
    SequenceSet,
    SimpleCode,
    Status,
)
from exoimap.protocol.utf7 import encode_mailbox
from exoimap.sandbox.exchange import texts
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.exchange.fetch import (
    FetchRequest,
    MessageView,
    expand_items,
    render_fetch_pieces,
)
from exoimap.sandbox.exchange.mailboxes import Mailbox, special_use_attribute
from exoimap.sandbox.exchange.search import SearchItem, search
from exoimap.store.base import normalize_flags

__all__ = [
    "AppendRefusal",
    "MailboxSession",
    "append_message",
    "append_refusal",
    "folder_messages",
    "list_name",
    "mailbox_command",
]

_QUOTE_CHARS = set("() {%*]")


class MailboxSession(Protocol):
    """What the mailbox commands use of a connection (the session satisfies it).

    Defined here, not imported from the session's module, so that the session may import
    the handlers without a cycle. The handlers read the session's state; they change it
    only through its methods.
    """

    @property
    def settings(self) -> ExchangeSettings: ...

    @property
    def mailbox(self) -> Mailbox | None: ...

    @property
    def closing(self) -> bool: ...

    @property
    def pending_size(self) -> int: ...

    # the selected folder as the client knows it: UIDs by message number, flags by UID
    # (the handlers keep the flags up to date as they change them)
    @property
    def selected(self) -> str | None: ...

    @property
    def readonly(self) -> bool: ...

    @property
    def known(self) -> list[int]: ...

    @property
    def known_flags(self) -> dict[int, frozenset[str]]: ...

    def select(
        self,
        folder: str,
        *,
        readonly: bool,
        uidvalidity: int,
        uids: list[int],
        flags: dict[int, frozenset[str]],
    ) -> None: ...

    def deselect(self) -> None: ...

    def rename_selected(self, new_name: str) -> None: ...

    def raw(self, data: bytes) -> None: ...

    def raw_pieces(self, pieces: list[bytes]) -> None: ...

    def untagged(self, text: str) -> None: ...

    def tagged(
        self, tag: str, status: Status, text: str, code: ResponseCode | None = None
    ) -> None: ...

    def ok(self, tag: str, command: str, code: ResponseCode | None = None) -> None: ...

    def count_bad(self, tag: str | None, text: str) -> None: ...

    def close_with(self, text: str) -> None: ...

    def now(self) -> float:
        """The server's clock (seconds since the epoch)."""
        ...

    def push_updates(self) -> None: ...

    async def flush(self) -> None: ...


def folder_messages(box: Mailbox, folder: str) -> dict[int, Any]:
    """The folder's message records by UID (read directly: the server runs on the store's
    own event loop and needs flags, dates and bytes without copying)."""
    return box.store.record(folder).messages


def list_name(name: str) -> bytes:
    """1.6 [C] S5 Imap4RequestList: literal for ``"``/``\\``, quoted for empty names or
    ``( ) { SP % * ]``, otherwise an atom."""
    raw = encode_mailbox(name)
    if b'"' in raw or b"\\" in raw:
        return b"{%d}\r\n" % len(raw) + raw
    if not raw or any(ch in _QUOTE_CHARS for ch in raw.decode("ascii")):
        return b'"' + raw + b'"'
    return raw


def _canonical(box: Mailbox, name: str) -> str | None:
    names = box.store.folder_names()
    if name.upper() == "INBOX":
        return next((n for n in names if n.upper() == "INBOX"), None)
    return name if name in names else None


def _pattern(reference: str, pattern: str) -> re.Pattern[str]:
    text = reference + pattern
    out = []
    for char in text:
        if char == "*":
            out.append(".*")
        elif char == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out) + r"\Z", re.IGNORECASE if text.upper() == "INBOX" else 0)


def _resolve(numbers: list[int], sequence: SequenceSet) -> list[int]:
    """The members of sorted ``numbers`` inside the set (``*`` is the largest)."""
    if not numbers:
        return []
    largest = numbers[-1]
    chosen: set[int] = set()
    for start, end in sequence.ranges:
        a = largest if start is None else start
        b = largest if end is None else end
        lo, hi = min(a, b), max(a, b)
        if lo > largest and (start is None or end is None):
            lo = hi = largest  # n:* with n beyond the last one names the last one (1.8)
        left = bisect.bisect_left(numbers, lo)
        right = bisect.bisect_right(numbers, hi)
        chosen.update(numbers[left:right])
    return sorted(chosen)


def _targets(
    session: MailboxSession, sequence: SequenceSet, uid: bool
) -> list[tuple[int, int]] | None:
    """(seq, uid) pairs; ``None`` when a message-number set is out of range."""
    known = session.known
    if uid:
        uids = _resolve(known, sequence)
        return [(bisect.bisect_left(known, u) + 1, u) for u in uids]
    count = len(known)
    for start, end in sequence.ranges:
        for n in (start, end):
            if n is not None and n > count:
                return None
    seqs = _resolve(list(range(1, count + 1)), sequence)
    return [(s, known[s - 1]) for s in seqs]


async def mailbox_command(session: MailboxSession, tag: str, command: c.Command) -> None:
    box = session.mailbox
    assert box is not None
    try:
        await _dispatch(session, box, tag, command)
    except RemoteProtocolError:
        session.count_bad(tag, texts.COMMAND_ARGUMENT_ERROR_11)
    except StoreError:
        session.tagged(tag, Status.NO, texts.SERVER_UNAVAILABLE)


def _uses_condstore(command: c.Command) -> bool:
    """CONDSTORE/QRESYNC arguments: Exchange has neither (1.3), so they are bad arguments."""
    if isinstance(command, c.Select | c.Examine):
        return command.condstore or command.qresync is not None
    if isinstance(command, c.Fetch):
        return command.changed_since is not None or command.vanished
    if isinstance(command, c.StoreFlags):
        return command.unchanged_since is not None
    return False


async def _dispatch(session: MailboxSession, box: Mailbox, tag: str, command: c.Command) -> None:
    if _uses_condstore(command):
        session.count_bad(tag, texts.COMMAND_ARGUMENT_ERROR_12)
        return
    if isinstance(command, c.Fetch):
        await _fetch(session, box, tag, command)
        return
    handler = _HANDLERS.get(type(command))
    if handler is None:
        session.count_bad(tag, texts.COMMAND_ERROR_12)
        return
    handler(session, box, tag, command)


# --- folders ------------------------------------------------------------------------------


def _list(session: MailboxSession, box: Mailbox, tag: str, command: c.List | c.Lsub) -> None:
    name = "LIST" if isinstance(command, c.List) else "LSUB"
    if (command.reference + command.pattern).count("*") + command.pattern.count("%") > 10:
        session.count_bad(tag, texts.COMMAND_ARGUMENT_ERROR_11)
        return
    if command.pattern == "":
        session.raw(b'* %s (\\Noselect \\HasChildren) "/" ""\r\n' % name.encode())
        session.ok(tag, name)
        return
    matcher = _pattern(command.reference, command.pattern)
    names = sorted(box.store.folder_names(), key=str.lower)
    for folder in names:
        if isinstance(command, c.Lsub) and folder not in box.subscribed:
            continue
        if not matcher.match(folder):
            continue
        attributes = []
        messages = folder_messages(box, folder)
        if session.settings.mark_unseen_folders and any(
            "\\Seen" not in m.flags for m in messages.values()
        ):
            attributes.append("\\Marked")
        children = any(n.startswith(folder + "/") for n in names)
        attributes.append("\\HasChildren" if children else "\\HasNoChildren")
        special = special_use_attribute(box.store.record(folder).role)
        if special:
            attributes.append(special)
        session.raw(
            b'* %s (%s) "/" ' % (name.encode(), " ".join(attributes).encode())
            + list_name(folder)
            + b"\r\n"
        )
    session.ok(tag, name)


def _status(session: MailboxSession, box: Mailbox, tag: str, command: c.StatusCommand) -> None:
    folder = _canonical(box, command.mailbox)
    if folder is None:
        shown = encode_mailbox(command.mailbox).decode("ascii")
        session.tagged(tag, Status.NO, texts.SELECT_DOES_NOT_EXIST.format(name=shown))
        return
    state = box.store.record(folder)
    values = {
        "MESSAGES": len(state.messages),
        "RECENT": 0,
        "UIDNEXT": state.uidnext,
        "UIDVALIDITY": state.uidvalidity,
        "UNSEEN": sum("\\Seen" not in m.flags for m in state.messages.values()),
    }
    items = []
    for item in command.items:
        key = item.upper()
        if key not in values:
            raise RemoteProtocolError(f"unknown STATUS item {item!r}")
        items.append(f"{key} {values[key]}")
    trailing = b" " if session.settings.status_trailing_space else b""
    session.raw(
        b"* STATUS " + list_name(folder) + b" (" + " ".join(items).encode() + b")" + trailing
    )
    session.raw(b"\r\n")
    session.ok(tag, "STATUS")


def _select(session: MailboxSession, box: Mailbox, tag: str, command: c.Select | c.Examine) -> None:
    verb = "SELECT" if isinstance(command, c.Select) else "EXAMINE"
    session.deselect()
    folder = _canonical(box, command.mailbox)
    if folder is None:
        shown = encode_mailbox(command.mailbox).decode("ascii")
        session.tagged(tag, Status.NO, texts.SELECT_DOES_NOT_EXIST.format(name=shown))
        return
    record = box.store.record(folder)
    uids = sorted(record.messages)
    session.select(
        folder,
        readonly=isinstance(command, c.Examine),
        uidvalidity=record.uidvalidity,
        uids=uids,
        flags={u: record.messages[u].flags for u in uids},
    )
    flags = " ".join(texts.FLAGS)
    session.untagged(f"{len(uids)} EXISTS")
    session.untagged("0 RECENT")
    session.untagged(f"FLAGS ({flags})")
    session.untagged(f"OK [PERMANENTFLAGS ({flags})] {texts.PERMANENT_FLAGS_TEXT}")
    unseen = next((i for i, u in enumerate(uids, 1) if "\\Seen" not in record.messages[u].flags), 0)
    if unseen:
        session.untagged(f"OK [UNSEEN {unseen}] {texts.UNSEEN_TEXT}")
    session.untagged(f"OK [UIDVALIDITY {record.uidvalidity}] {texts.UIDVALIDITY_TEXT}")
    if record.uidnext > 0:
        session.untagged(f"OK [UIDNEXT {record.uidnext}] {texts.UIDNEXT_TEXT}")
    mode = "READ-ONLY" if session.readonly else "READ-WRITE"
    session.ok(tag, verb, SimpleCode(mode))


class _NoSuchFolder(Exception):
    """The command names a folder that does not exist (answered NO, "folder not found")."""


def _existing(box: Mailbox, name: str) -> str:
    folder = _canonical(box, name)
    if folder is None:
        raise _NoSuchFolder(name)
    return folder


def _create(session: MailboxSession, box: Mailbox, command: c.Create) -> None:
    if _canonical(box, command.mailbox) is not None:
        raise FolderError("exists")
    box.store.create_folder_now(command.mailbox.rstrip("/"))
    box.subscribed.add(command.mailbox.rstrip("/"))


def _delete(session: MailboxSession, box: Mailbox, command: c.Delete) -> None:
    folder = _existing(box, command.mailbox)
    box.store.delete_folder_now(folder)
    if session.selected == folder:
        session.deselect()  # our own DELETE: no BYE, just no folder any more
    box.subscribed.discard(folder)


def _rename(session: MailboxSession, box: Mailbox, command: c.Rename) -> None:
    folder = _existing(box, command.mailbox)
    box.store.rename_folder_now(folder, command.new_name)
    if session.selected == folder:
        session.rename_selected(command.new_name)
    for name in list(box.subscribed):
        if name == folder or name.startswith(folder + "/"):
            box.subscribed.discard(name)
            box.subscribed.add(command.new_name + name[len(folder) :])


def _subscribe(session: MailboxSession, box: Mailbox, command: c.Subscribe) -> None:
    box.subscribed.add(_existing(box, command.mailbox))


def _unsubscribe(session: MailboxSession, box: Mailbox, command: c.Unsubscribe) -> None:
    # unlike SUBSCRIBE, a name that is no folder is no error
    box.subscribed.discard(_canonical(box, command.mailbox) or command.mailbox)


_FOLDER_ACTIONS: dict[type, Callable[[MailboxSession, Mailbox, Any], None]] = {
    c.Create: _create,
    c.Delete: _delete,
    c.Rename: _rename,
    c.Subscribe: _subscribe,
    c.Unsubscribe: _unsubscribe,
}


def _manage(
    session: MailboxSession,
    box: Mailbox,
    tag: str,
    command: c.Create | c.Delete | c.Rename | c.Subscribe | c.Unsubscribe,
) -> None:
    """CREATE/DELETE/RENAME/[UN]SUBSCRIBE, with the answers they share."""
    verb = type(command).__name__.upper()
    try:
        _FOLDER_ACTIONS[type(command)](session, box, command)
    except _NoSuchFolder:
        session.tagged(tag, Status.NO, texts.FOLDER_NOT_FOUND)
        return
    except FolderError:
        session.tagged(tag, Status.NO, texts.COMMAND_FAILED.format(command=verb))
        return
    session.ok(tag, verb)


# --- messages -----------------------------------------------------------------------------


def _throttled(session: MailboxSession, tag: str) -> bool:
    box = session.mailbox
    assert box is not None
    now = asyncio.get_running_loop().time()
    if not box.throttle.over_limit(now):
        return False
    policy = session.settings.throttle
    session.tagged(tag, Status(policy.status), texts.throttled(policy.backoff_ms))
    if policy.bye:
        session.close_with(texts.BYE_AFTER_BAD_COMMANDS)
    return True


def _charge(session: MailboxSession, messages: int, size: int) -> None:
    assert session.mailbox is not None
    session.mailbox.throttle.charge(asyncio.get_running_loop().time(), messages, size)


async def _fetch(session: MailboxSession, box: Mailbox, tag: str, command: c.Fetch) -> None:
    items = expand_items(command.items)
    targets = _targets(session, command.sequence_set, command.uid)
    if targets is None:
        session.count_bad(tag, texts.BAD_MESSAGE_SET)
        return
    bodies = [i for i in items if isinstance(i, FetchRequest) or i.startswith("RFC822")]
    if bodies and _throttled(session, tag):
        return
    folder = session.selected
    assert folder is not None
    messages = folder_messages(box, folder)
    sets_seen = not session.readonly and any(
        (isinstance(i, FetchRequest) and not i.peek) or i in ("RFC822", "RFC822.TEXT")
        for i in items
    )
    served = size = 0
    for seq, uid in targets:
        record = messages.get(uid)
        if record is None:
            continue
        wanted = list(items)
        if sets_seen and "\\Seen" not in record.flags:
            box.store.store_flags(folder, [uid], frozenset({"\\Seen"}), "add")
            session.known_flags[uid] = record.flags
            if "FLAGS" not in wanted:
                wanted.append("FLAGS")
        view = MessageView(uid, seq, record.flags, record.internal_date, record.data)
        pieces = render_fetch_pieces(
            view,
            wanted,
            uid_first=command.uid,
            estimate_size=session.settings.estimated_rfc822_size,
        )
        session.raw_pieces(pieces)
        if bodies:
            served += 1
            size += len(record.data)
        if session.pending_size > 256 * 1024:
            await session.flush()
            if session.closing:
                return
    _charge(session, served, size)
    session.ok(tag, "FETCH")


def _search(session: MailboxSession, box: Mailbox, tag: str, command: c.Search) -> None:
    if command.charset is not None and command.charset.upper() not in ("US-ASCII", "UTF-8"):
        session.tagged(tag, Status.NO, texts.BAD_CHARSET, OtherCode("BADCHARSET", "(US-ASCII)"))
        return
    folder = session.selected
    assert folder is not None
    messages = folder_messages(box, folder)
    items = [
        SearchItem(seq, uid, messages[uid].flags, messages[uid].internal_date, messages[uid].data)
        for seq, uid in enumerate(session.known, 1)
        if uid in messages
    ]
    found = search(items, command.criteria)
    numbers = " ".join(str(i.uid if command.uid else i.seq) for i in found)
    session.raw(b"* SEARCH" + (b" " + numbers.encode() if numbers else b"") + b"\r\n")
    session.ok(tag, "SEARCH")


def _store(session: MailboxSession, box: Mailbox, tag: str, command: c.StoreFlags) -> None:
    targets = _targets(session, command.sequence_set, command.uid)
    if targets is None:
        session.count_bad(tag, texts.BAD_MESSAGE_SET)
        return
    folder = session.selected
    assert folder is not None
    mode = {c.StoreMode.SET: "set", c.StoreMode.ADD: "add", c.StoreMode.REMOVE: "remove"}
    if not session.readonly:
        uids = [uid for _, uid in targets]
        changed = box.store.store_flags(folder, uids, frozenset(command.flags), mode[command.mode])
        for uid, flags in changed.items():
            session.known_flags[uid] = flags
    messages = folder_messages(box, folder)
    if not command.silent:
        for seq, uid in targets:
            record = messages.get(uid)
            if record is None:
                continue
            shown = " ".join(sorted(record.flags)).encode()
            suffix = b" UID %d" % uid if command.uid else b""
            session.raw(b"* %d FETCH (FLAGS (%s)%s)\r\n" % (seq, shown, suffix))
    session.ok(tag, "STORE")


def _copy(session: MailboxSession, box: Mailbox, tag: str, command: c.Copy | c.Move) -> None:
    verb = "COPY" if isinstance(command, c.Copy) else "MOVE"
    targets = _targets(session, command.sequence_set, command.uid)
    if targets is None:
        session.count_bad(tag, texts.BAD_MESSAGE_SET)
        return
    dest = _canonical(box, command.mailbox)
    if dest is None:
        session.tagged(tag, Status.NO, texts.FOLDER_NOT_FOUND, SimpleCode("TRYCREATE"))
        return
    if _throttled(session, tag):
        return
    folder = session.selected
    assert folder is not None
    uids = [uid for _, uid in targets]
    if verb == "MOVE" and session.readonly:
        session.tagged(tag, Status.NO, texts.COMMAND_FAILED.format(command=verb))
        return
    size = sum(len(m.data) for u, m in folder_messages(box, folder).items() if u in set(uids))
    if verb == "COPY":
        mapping = box.store.copy_now(folder, uids, dest)
    else:
        mapping = box.store.move_now(folder, uids, dest)
    _charge(session, len(mapping), size)
    code = None
    if mapping:
        code = CopyUidCode(
            box.store.record(dest).uidvalidity,
            SequenceSet.of(*mapping.keys()),
            SequenceSet.of(*mapping.values()),
        )
    if verb == "COPY":
        session.ok(tag, "COPY", code)
        return
    if code is not None:
        line = b"[COPYUID %d %s %s]" % (
            code.uidvalidity,
            str(code.source_uids).encode(),
            str(code.destination_uids).encode(),
        )
        session.raw(
            (line if session.settings.bare_copyuid else b"* OK " + line + b" Moved.") + b"\r\n"
        )
    session.push_updates()
    session.ok(tag, "MOVE")


def _expunge(
    session: MailboxSession, box: Mailbox, tag: str, command: c.Expunge | c.UidExpunge
) -> None:
    verb = "EXPUNGE"
    folder = session.selected
    assert folder is not None
    if session.readonly:
        session.tagged(tag, Status.NO, texts.COMMAND_FAILED.format(command=verb))
        return
    messages = folder_messages(box, folder)
    if isinstance(command, c.UidExpunge):
        chosen = _resolve(session.known, command.sequence_set)
        uids = [u for u in chosen if u in messages and "\\Deleted" in messages[u].flags]
        box.store.expunge_now(folder, uids)
    else:
        box.store.expunge_now(folder)
    session.push_updates()
    session.ok(tag, verb)


def _close(session: MailboxSession, box: Mailbox, tag: str, command: c.Close | c.Unselect) -> None:
    closing = isinstance(command, c.Close)
    if closing and not session.readonly and session.selected:
        box.store.expunge_now(session.selected)
    session.deselect()
    session.ok(tag, "CLOSE" if closing else "UNSELECT")


# The mailbox commands that answer at once, by type (FETCH, which flushes as it goes, is
# awaited apart); a type missing here is a command Exchange does not know.
_HANDLERS: dict[type, Callable[[MailboxSession, Mailbox, str, Any], None]] = {
    c.List: _list,
    c.Lsub: _list,
    c.StatusCommand: _status,
    c.Select: _select,
    c.Examine: _select,
    **dict.fromkeys((c.Create, c.Delete, c.Rename, c.Subscribe, c.Unsubscribe), _manage),
    c.Search: _search,
    c.StoreFlags: _store,
    c.Copy: _copy,
    c.Move: _copy,
    c.Expunge: _expunge,
    c.UidExpunge: _expunge,
    c.Close: _close,
    c.Unselect: _close,
}


# --- APPEND -------------------------------------------------------------------------------


class AppendRefusal(NamedTuple):
    """A refused APPEND's answer, and when and how it is given."""

    status: Status
    text: str
    code: ResponseCode | None = None
    #: Answered once the message was read (and discarded), even after a synchronising
    #: literal's ``+``; otherwise instead of the ``+``.
    after_literal: bool = False
    #: Counted as a bad command (the third in a row ends the connection, 1.4 [C]).
    bad: bool = False
    #: Followed by ``* BYE Connection closed. 14`` (throttling with ``bye``).
    bye: bool = False


def append_refusal(session: MailboxSession, command: c.Append) -> AppendRefusal | None:
    """Why the mailbox refuses an APPEND before its message arrives; ``None`` if it does not."""
    box = session.mailbox
    assert box is not None
    settings = session.settings
    too_large = (command.size or 0) > box.max_receive_size
    if too_large and settings.refuse_oversize_before_literal:
        return AppendRefusal(Status.NO, texts.MESSAGE_TOO_LARGE)
    folder = _canonical(box, command.mailbox)
    if folder is None:
        return AppendRefusal(Status.NO, texts.FOLDER_NOT_FOUND, SimpleCode("TRYCREATE"))
    if folder in settings.refuse_append_to:
        return AppendRefusal(Status.NO, texts.COMMAND_FAILED.format(command="APPEND"))
    if box.throttle.over_limit(asyncio.get_running_loop().time()):
        policy = settings.throttle
        return AppendRefusal(
            Status(policy.status), texts.throttled(policy.backoff_ms), bye=policy.bye
        )
    if too_large:
        return AppendRefusal(Status.NO, texts.MESSAGE_TOO_LARGE, after_literal=True)
    return None


def append_message(session: MailboxSession, tag: str, command: c.Append, data: bytes) -> None:
    """Store an APPEND's message (all of it has arrived) and answer."""
    box = session.mailbox
    assert box is not None
    flags: frozenset[str] | tuple[str, ...] = command.flags
    if flags and session.settings.append_drops_flags:
        flags = normalize_flags(flags) - session.settings.append_drops_flags
    # no date given: the server's clock (the sandbox clock, which tests can move)
    date = command.date or _dt.datetime.fromtimestamp(int(session.now()), _dt.UTC)
    try:
        folder = _canonical(box, command.mailbox)
        if folder is None:
            raise FolderError("gone")
        uid = box.store.add_message(folder, data, flags=flags, internal_date=date)
    except RemoteProtocolError:
        session.count_bad(tag, texts.COMMAND_ARGUMENT_ERROR_11)
        return
    except ExoimapError:
        session.tagged(tag, Status.NO, texts.COMMAND_FAILED.format(command="APPEND"))
        return
    _charge(session, 1, len(data))
    uidvalidity = box.store.record(folder).uidvalidity
    session.push_updates()
    session.ok(tag, "APPEND", AppendUidCode(uidvalidity, SequenceSet.of(uid)))
