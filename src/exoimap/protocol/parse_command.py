"""Client commands: framed bytes -> typed commands (the server side's parser).

Malformed input raises :class:`~exoimap.errors.RemoteProtocolError` only; the server
connection turns that into a :class:`~exoimap.protocol.events.BadCommand` event.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
from collections.abc import Sequence

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


def _body(r: Reader, name: bytes, uid: bool) -> c.Command:
    simple = _NO_ARGS.get(name)
    if simple is not None and not uid:
        r.end()
        command: c.Command = simple()
        return command
    one = _ONE_MAILBOX.get(name)
    if name in (b"SELECT", b"EXAMINE") and not uid:
        r.sp()
        mailbox = _mailbox(r)
        condstore, qresync = _select_params(r)
        kind = c.Select if name == b"SELECT" else c.Examine
        command = kind(mailbox, condstore, qresync)
    elif one is not None and not uid:
        r.sp()
        command = one(_mailbox(r))
    elif name == b"LOGIN" and not uid:
        r.sp()
        user = dec(r.astring())
        r.sp()
        command = c.Login(user, Secret(dec(r.astring())))
    elif name == b"AUTHENTICATE" and not uid:
        r.sp()
        mechanism = dec(r.atom()).upper()
        initial = None
        if r.maybe(b" "):
            initial = _base64(r, r.atom())
        command = c.Authenticate(mechanism, initial)
    elif name == b"RENAME" and not uid:
        r.sp()
        old = _mailbox(r)
        r.sp()
        command = c.Rename(old, _mailbox(r))
    elif name in (b"LIST", b"LSUB") and not uid:
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
        command = c.List(reference, pattern) if name == b"LIST" else c.Lsub(reference, pattern)
    elif name == b"STATUS" and not uid:
        r.sp()
        mailbox = _mailbox(r)
        r.sp()
        r.expect(b"(")
        items: list[str] = []
        while not r.maybe(b")"):
            if items:
                r.sp()
            items.append(dec(r.atom()).upper())
        command = c.StatusCommand(mailbox, tuple(items))
    elif name == b"FETCH":
        r.sp()
        seq = _seq(r)
        r.sp()
        fetch_items: list[c.FetchItem] = []
        if r.maybe(b"("):
            while not r.maybe(b")"):
                if fetch_items:
                    r.sp()
                fetch_items.append(_fetch_item(r))
            if not fetch_items:
                raise r.error("an empty FETCH item list")
        else:
            fetch_items.append(_fetch_item(r))
        changed_since = None
        vanished = False
        if r.maybe(b" ("):
            if r.line[r.pos : r.pos + 13].upper() != b"CHANGEDSINCE ":
                raise r.error("expected CHANGEDSINCE")
            r.pos += 13
            changed_since = r.number()
            vanished = r.line[r.pos : r.pos + 9].upper() == b" VANISHED"
            if vanished:
                r.pos += 9
                if not uid:
                    raise r.error("VANISHED without UID FETCH")
            r.expect(b")")
        command = c.Fetch(seq, tuple(fetch_items), uid, changed_since, vanished)
    elif name == b"SEARCH":
        r.sp()
        charset = None
        if r.line[r.pos : r.pos + 8].upper() == b"CHARSET ":
            r.pos += 8
            charset = dec(r.astring())
            r.sp()
        criteria = _search_keys(r, 0)
        if not criteria:
            raise r.error("SEARCH without criteria")
        command = c.Search(criteria, uid, charset)
    elif name == b"STORE":
        r.sp()
        seq = _seq(r)
        r.sp()
        unchanged = None
        if r.maybe(b"("):
            if r.line[r.pos : r.pos + 15].upper() != b"UNCHANGEDSINCE ":
                raise r.error("expected UNCHANGEDSINCE")
            r.pos += 15
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
        command = c.Store(seq, flags, mode, m.group(2) is not None, uid, unchanged)
    elif name in (b"COPY", b"MOVE"):
        r.sp()
        seq = _seq(r)
        r.sp()
        mailbox = _mailbox(r)
        command = c.Copy(seq, mailbox, uid) if name == b"COPY" else c.Move(seq, mailbox, uid)
    elif name == b"EXPUNGE" and uid:
        r.sp()
        command = c.UidExpunge(_seq(r))
    elif name == b"APPEND" and not uid:
        mailbox, flags, date = _append_args(r)
        message = r.literal_bytes()
        command = c.Append(mailbox, message, flags, date)
    elif name == b"ENABLE" and not uid:
        caps: list[str] = []
        while r.maybe(b" "):
            caps.append(dec(r.atom()))
        if not caps:
            raise r.error("ENABLE without capabilities")
        command = c.Enable(tuple(caps))
    elif name == b"ID" and not uid:
        r.sp()
        if r.is_nil():
            command = c.Id(None)
        else:
            r.expect(b"(")
            params: list[tuple[str, str | None]] = []
            while not r.maybe(b")"):
                if params:
                    r.sp()
                key = dec(r.string())
                r.sp()
                value = r.nstring()
                params.append((key, None if value is None else dec(value)))
            command = c.Id(tuple(params))
    else:
        raise r.error("unknown command")
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
        if name not in (b"FETCH", b"SEARCH", b"STORE", b"COPY", b"MOVE", b"EXPUNGE"):
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
