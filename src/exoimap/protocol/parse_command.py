"""Client commands: framed bytes -> typed commands (the server side's parser).

Malformed input raises :class:`~exoimap.errors.RemoteProtocolError` only; the server
connection turns that into a :class:`~exoimap.protocol.events.BadCommand` event.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
from collections.abc import Callable, Sequence

from exoimap.errors import RemoteProtocolError
from exoimap.protocol import commands as c
from exoimap.protocol.dates import parse_date_time
from exoimap.protocol.framing import literal_marker, split_message
from exoimap.protocol.parse import parse_tag
from exoimap.protocol.reader import MAX_DEPTH, Reader, StreamedLiteral, dec
from exoimap.protocol.types import SequenceSet
from exoimap.protocol.utf7 import decode_mailbox_lenient
from exoimap.secrets import Secret

__all__ = [
    "parse_append_prefix",
    "parse_authenticate_line",
    "parse_command",
    "parse_command_line",
    "recover_tag",
]

_RECOVER_TAG = re.compile(rb'([^\x00-\x20\x7f(){%*"\\+]{1,64}) ')
_PATTERN_RE = re.compile(rb'[^\x00-\x20\x7f(){"\\]+')
_SEARCH_ATOM_RE = re.compile(rb'[^\x00-\x20\x7f(){"\\]+')
_FETCH_ITEM_RE = re.compile(
    rb"(BODY|BINARY)(\.PEEK)?\[([^\]\r\n]*)\](?:<(\d{1,10})\.(\d{1,10})>)?", re.IGNORECASE
)
_SEQ_ATOM_RE = re.compile(rb"[0-9*:,]+")
_STORE_RE = re.compile(rb"([+-]?)FLAGS(\.SILENT)?", re.IGNORECASE)

_NO_ARGS: dict[bytes, type] = {
    b"CAPABILITY": c.Capability,
    b"NOOP": c.Noop,
    b"LOGOUT": c.Logout,
    b"STARTTLS": c.StartTls,
    b"NAMESPACE": c.Namespace,
    b"CLOSE": c.Close,
    b"UNSELECT": c.Unselect,
    b"EXPUNGE": c.Expunge,
    b"IDLE": c.Idle,
}
_ONE_MAILBOX: dict[bytes, type] = {
    b"SELECT": c.Select,
    b"EXAMINE": c.Examine,
    b"CREATE": c.Create,
    b"DELETE": c.Delete,
    b"SUBSCRIBE": c.Subscribe,
    b"UNSUBSCRIBE": c.Unsubscribe,
}


def recover_tag(line: bytes) -> str | None:
    """The tag of a (possibly malformed) command line, if one can be read."""
    m = _RECOVER_TAG.match(line)
    return None if m is None else m.group(1).decode("ascii", "surrogateescape")


def _mailbox(r: Reader) -> str:
    return decode_mailbox_lenient(r.astring())


def _seq(r: Reader) -> SequenceSet:
    m = _SEQ_ATOM_RE.match(r.line, r.pos)
    if m is None:
        raise r.error("expected a sequence set")
    r.pos = m.end()
    return SequenceSet.parse(m.group().decode("ascii"))


def _fetch_item(r: Reader) -> c.FetchItem:
    m = _FETCH_ITEM_RE.match(r.line, r.pos)
    if m is not None:
        r.pos = m.end()
        partial = None
        if m.group(4) is not None:
            partial = (int(m.group(4)), int(m.group(5)))
            if partial[1] == 0:
                raise r.error("a zero-length partial fetch")
        return c.BodySection(
            section=dec(m.group(3)),
            peek=m.group(2) is not None,
            partial=partial,
            binary=m.group(1).upper() == b"BINARY",
        )
    return dec(r.atom()).upper()


def _search_keys(r: Reader, depth: int) -> tuple[c.SearchKey, ...]:
    keys: list[c.SearchKey] = []
    while True:
        if r.at_end() or r.peek() == 0x29:  # ")"
            return tuple(keys)
        if keys:
            r.sp()
        ch = r.peek()
        if ch == 0x28:
            if depth >= MAX_DEPTH:
                raise r.error("search keys nested too deeply")
            r.pos += 1
            keys.append(_search_keys(r, depth + 1))
            r.expect(b")")
        elif ch == 0x22 or (ch in (0x7B, 0x7E) and r.at_literal()):
            keys.append(dec(r.string()))
        else:
            m = _SEARCH_ATOM_RE.match(r.line, r.pos)
            if m is None:
                raise r.error("expected a search key")
            r.pos = m.end()
            keys.append(dec(m.group()))


def _select_params(r: Reader) -> tuple[bool, c.QResync | None]:
    """``(CONDSTORE)`` and/or ``(QRESYNC (uidvalidity modseq [known-uids]))``."""
    condstore, qresync = False, None
    if not r.maybe(b" ("):
        return condstore, qresync
    while True:
        name = r.atom().upper()
        if name == b"CONDSTORE":
            condstore = True
        elif name == b"QRESYNC":
            r.expect(b" (")
            validity = r.nz_number()
            r.sp()
            modseq = r.number()
            known = None
            if r.maybe(b" "):
                known = SequenceSet.parse(r.sequence_set_text())
            r.expect(b")")
            qresync = c.QResync(validity, modseq, known)
        else:
            raise r.error("unknown SELECT parameter")
        if r.maybe(b")"):
            return condstore, qresync
        r.sp()


def _append_args(r: Reader) -> tuple[str, tuple[str, ...], _dt.datetime | None]:
    r.sp()
    mailbox = _mailbox(r)
    r.sp()
    flags: tuple[str, ...] = ()
    date = None
    if r.peek() == 0x28:
        flags = r.flag_list()
        r.sp()
    if r.peek() == 0x22:
        date = parse_date_time(dec(r.quoted()))
        r.sp()
    return mailbox, flags, date


# --- one parser per command: (reader after the name, the name, UID prefix) -> command ---


def _no_args(r: Reader, name: bytes, uid: bool) -> c.Command:
    command: c.Command = _NO_ARGS[name]()
    return command


def _select(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    mailbox = _mailbox(r)
    condstore, qresync = _select_params(r)
    kind = c.Select if name == b"SELECT" else c.Examine
    return kind(mailbox, condstore, qresync)


def _one_mailbox(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    command: c.Command = _ONE_MAILBOX[name](_mailbox(r))
    return command


def _login(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    user = dec(r.astring())
    r.sp()
    return c.Login(user, Secret(dec(r.astring())))


def _authenticate(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    mechanism = dec(r.atom()).upper()
    initial = None
    if r.maybe(b" "):
        initial = _base64(r, r.atom())
    return c.Authenticate(mechanism, initial)


def _rename(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    old = _mailbox(r)
    r.sp()
    return c.Rename(old, _mailbox(r))


def _list(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    reference = _mailbox(r)
    r.sp()
    if r.peek() == 0x22 or r.at_literal():
        raw = r.string()
    else:
        m = _PATTERN_RE.match(r.line, r.pos)
        if m is None:
            raise r.error("expected a mailbox pattern")
        r.pos = m.end()
        raw = m.group()
    pattern = decode_mailbox_lenient(raw)
    return c.List(reference, pattern) if name == b"LIST" else c.Lsub(reference, pattern)


def _status(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    mailbox = _mailbox(r)
    r.sp()
    r.expect(b"(")
    items: list[str] = []
    while not r.maybe(b")"):
        if items:
            r.sp()
        items.append(dec(r.atom()).upper())
    return c.StatusCommand(mailbox, tuple(items))


def _fetch_items(r: Reader) -> tuple[c.FetchItem, ...]:
    if not r.maybe(b"("):
        return (_fetch_item(r),)
    items: list[c.FetchItem] = []
    while not r.maybe(b")"):
        if items:
            r.sp()
        items.append(_fetch_item(r))
    if not items:
        raise r.error("an empty FETCH item list")
    return tuple(items)


def _fetch(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    seq = _seq(r)
    r.sp()
    items = _fetch_items(r)
    changed_since = None
    vanished = False
    if r.maybe(b" ("):
        if not r.maybe_word(b"CHANGEDSINCE "):
            raise r.error("expected CHANGEDSINCE")
        changed_since = r.number()
        vanished = r.maybe_word(b" VANISHED")
        if vanished and not uid:
            raise r.error("VANISHED without UID FETCH")
        r.expect(b")")
    return c.Fetch(seq, items, uid, changed_since, vanished)


def _search(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    charset = None
    if r.maybe_word(b"CHARSET "):
        charset = dec(r.astring())
        r.sp()
    criteria = _search_keys(r, 0)
    if not criteria:
        raise r.error("SEARCH without criteria")
    return c.Search(criteria, uid, charset)


def _store(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    seq = _seq(r)
    r.sp()
    unchanged = None
    if r.maybe(b"("):
        if not r.maybe_word(b"UNCHANGEDSINCE "):
            raise r.error("expected UNCHANGEDSINCE")
        unchanged = r.number()
        r.expect(b") ")
    m = _STORE_RE.match(r.line, r.pos)
    if m is None:
        raise r.error("expected FLAGS, +FLAGS or -FLAGS")
    r.pos = m.end()
    r.sp()
    if r.peek() == 0x28:
        flags = r.flag_list()
    else:
        words = [r.flag()]
        while r.maybe(b" "):
            words.append(r.flag())
        flags = tuple(dec(w) for w in words)
    mode = c.StoreMode(m.group(1).decode())
    return c.StoreFlags(seq, flags, mode, m.group(2) is not None, uid, unchanged)


def _copy(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    seq = _seq(r)
    r.sp()
    mailbox = _mailbox(r)
    return c.Copy(seq, mailbox, uid) if name == b"COPY" else c.Move(seq, mailbox, uid)


def _uid_expunge(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    return c.UidExpunge(_seq(r))


def _append(r: Reader, name: bytes, uid: bool) -> c.Command:
    mailbox, flags, date = _append_args(r)
    return c.Append(mailbox, r.literal_bytes(), flags, date)


def _enable(r: Reader, name: bytes, uid: bool) -> c.Command:
    caps: list[str] = []
    while r.maybe(b" "):
        caps.append(dec(r.atom()))
    if not caps:
        raise r.error("ENABLE without capabilities")
    return c.Enable(tuple(caps))


def _id(r: Reader, name: bytes, uid: bool) -> c.Command:
    r.sp()
    if r.is_nil():
        return c.Id(None)
    r.expect(b"(")
    params: list[tuple[str, str | None]] = []
    while not r.maybe(b")"):
        if params:
            r.sp()
        key = dec(r.string())
        r.sp()
        value = r.nstring()
        params.append((key, None if value is None else dec(value)))
    return c.Id(tuple(params))


_CommandParser = Callable[[Reader, bytes, bool], c.Command]
#: Commands that may follow ``UID``.
_UID_COMMANDS: dict[bytes, _CommandParser] = {
    b"FETCH": _fetch,
    b"SEARCH": _search,
    b"STORE": _store,
    b"COPY": _copy,
    b"MOVE": _copy,
    b"EXPUNGE": _uid_expunge,
}
_COMMANDS: dict[bytes, _CommandParser] = {
    **dict.fromkeys(_NO_ARGS, _no_args),
    **dict.fromkeys(_ONE_MAILBOX, _one_mailbox),
    b"SELECT": _select,
    b"EXAMINE": _select,
    b"LOGIN": _login,
    b"AUTHENTICATE": _authenticate,
    b"RENAME": _rename,
    b"LIST": _list,
    b"LSUB": _list,
    b"STATUS": _status,
    b"FETCH": _fetch,
    b"SEARCH": _search,
    b"STORE": _store,
    b"COPY": _copy,
    b"MOVE": _copy,
    b"APPEND": _append,
    b"ENABLE": _enable,
    b"ID": _id,
}


def _body(r: Reader, name: bytes, uid: bool) -> c.Command:
    parse = (_UID_COMMANDS if uid else _COMMANDS).get(name)
    if parse is None:
        raise r.error("unknown command")
    command = parse(r, name, uid)
    r.end()
    return command


def _base64(r: Reader, token: bytes) -> Secret[bytes]:
    if token == b"=":
        return Secret(b"")
    try:
        return Secret(base64.b64decode(token, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise r.error("invalid base64") from exc


def parse_command(
    parts: list[bytes], literals: Sequence[bytes | StreamedLiteral]
) -> c.TaggedCommand:
    """One command from its framed parts."""
    r = Reader(parts, literals, quote_input=False)
    tag = parse_tag(r)
    r.sp()
    name = r.atom().upper()
    uid = False
    if name == b"UID":
        r.sp()
        name = r.atom().upper()
        uid = True
        if name not in _UID_COMMANDS:
            raise r.error("not a UID command")
    return c.TaggedCommand(tag, _body(r, name, uid))


def parse_append_prefix(
    parts: list[bytes], literals: Sequence[bytes | StreamedLiteral]
) -> tuple[str, c.Append] | None:
    """If ``parts`` (the last one ending at a literal marker) is an APPEND waiting for its
    message, the tag and the command (``message=None``, ``size`` set); otherwise None."""
    marker = literal_marker(parts[-1])
    if marker is None:
        return None
    r = Reader([*parts[:-1], parts[-1][: marker.start]], literals, quote_input=False)
    try:
        tag = parse_tag(r)
        r.sp()
        if r.atom().upper() != b"APPEND":
            return None
        mailbox, flags, date = _append_args(r)
        if not r.at_line_end() or r.idx != len(parts) - 1:
            return None
        return tag, c.Append(mailbox, None, flags, date, marker.size)
    except RemoteProtocolError:
        return None


def parse_authenticate_line(line: bytes) -> Secret[bytes] | None:
    """The decoded answer line of an AUTHENTICATE exchange; None for the ``*`` cancel."""
    if line.strip() == b"*":
        return None
    return _base64(Reader([line], [], quote_input=False), line.strip())


def parse_command_line(data: bytes) -> c.TaggedCommand:
    """Parse one complete command given as bytes with literals inline (tests and tools)."""
    parts, literals = split_message(data)
    return parse_command(parts, literals)
