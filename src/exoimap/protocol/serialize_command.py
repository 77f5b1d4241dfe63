"""Typed commands -> bytes, as pieces: :data:`WAIT` marks where a synchronising literal
must wait for the server's ``+`` (the client connection holds the rest back). Strings are
atoms when they can be, quoted when printable, literals otherwise; large literals (an
APPEND message) stay separate pieces, never copied."""

from __future__ import annotations

import base64
import datetime as _dt
from collections.abc import Callable
from typing import Any

from exoimap.errors import LocalProtocolError
from exoimap.protocol import commands as c
from exoimap.protocol.dates import format_date_time
from exoimap.protocol.serialize import (
    _ASTRING_OK,
    _ATOM_OK,
    _INLINE_LITERAL,
    _LIST_PATTERN_OK,
    _MAX_QUOTED,
    _QUOTABLE,
    _SEQ_OK,
    WAIT,
    Piece,
    _atom,
    _flags,
    _no_crlf,
    _quote,
    enc,
)
from exoimap.protocol.utf7 import encode_mailbox

__all__ = ["serialize_command"]


class _Writer:
    """Accumulates command pieces; literals split the output and may wait."""

    __slots__ = ("literal_plus_max", "pieces", "text")

    def __init__(self, literal_plus_max: int) -> None:
        self.pieces: list[Piece] = []
        self.text = bytearray()
        self.literal_plus_max = literal_plus_max

    def add(self, data: bytes) -> None:
        self.text += data

    def literal(self, data: bytes) -> None:
        sync = len(data) > self.literal_plus_max
        self.text += b"{%d}\r\n" % len(data) if sync else b"{%d+}\r\n" % len(data)
        if sync:
            self.pieces += [bytes(self.text), WAIT]
            self.text = bytearray()
        if len(data) > _INLINE_LITERAL:
            # Large data (a message) stays its own piece: never copied here.
            if self.text:
                self.pieces.append(bytes(self.text))
                self.text = bytearray()
            self.pieces.append(data)
        else:
            self.text += data

    def string(self, data: bytes) -> None:
        if len(data) <= _MAX_QUOTED and _QUOTABLE.match(data):
            self.add(_quote(data))
        else:
            self.literal(data)

    def astring(self, data: bytes) -> None:
        if _ASTRING_OK.match(data) and data.upper() != b"NIL":
            self.add(data)
        else:
            self.string(data)

    def mailbox(self, name: str) -> None:
        self.astring(encode_mailbox(name))

    def finish(self) -> list[Piece]:
        self.text += b"\r\n"
        self.pieces.append(bytes(self.text))
        return self.pieces


def _fetch_item(item: c.FetchItem) -> bytes:
    if isinstance(item, str):
        data = _atom(item, "fetch item")
        return data
    name = b"BINARY" if item.binary else b"BODY"
    if item.peek:
        name += b".PEEK"
    section = _no_crlf(enc(item.section), "a body section")
    if b"]" in section:
        raise LocalProtocolError("a body section must not contain ']'")
    out = name + b"[" + section + b"]"
    if item.partial is not None:
        start, length = item.partial
        if start < 0 or length <= 0:
            raise LocalProtocolError("invalid partial range")
        out += b"<%d.%d>" % (start, length)
    return out


def _search_key(w: _Writer, key: c.SearchKey, depth: int = 0) -> None:
    if isinstance(key, tuple):
        if depth > 32:
            raise LocalProtocolError("search keys nested too deeply")
        w.add(b"(")
        for i, k in enumerate(key):
            if i:
                w.add(b" ")
            _search_key(w, k, depth + 1)
        w.add(b")")
        return
    data = enc(key)
    if _SEQ_OK.match(data) or (_ATOM_OK.match(data) and data.upper() != b"NIL"):
        w.add(data)
    else:
        w.string(data)


def serialize_command(tag: str, command: c.Command, *, literal_plus_max: int = -1) -> list[Piece]:
    """The pieces of ``tag command``. Literals up to ``literal_plus_max`` bytes are sent
    non-synchronising (``{n+}``): pass ``-1`` without LITERAL+/LITERAL-, 4096 with
    LITERAL-, a huge number with LITERAL+."""
    w = _Writer(literal_plus_max)
    w.add(_atom(tag, "tag"))
    w.add(b" ")
    _command_body(w, command)
    return w.finish()


def _command_body(w: _Writer, cmd: c.Command) -> None:
    simple = _SIMPLE_NAMES.get(type(cmd))
    if simple is not None:
        w.add(simple)
        return
    write = _WRITERS.get(type(cmd))
    if write is None:
        raise LocalProtocolError(f"not a command: {type(cmd).__name__}")
    write(w, cmd)


# --- one writer per command type --------------------------------------------------------


def _login(w: _Writer, cmd: c.Login) -> None:
    w.add(b"LOGIN ")
    w.astring(enc(cmd.username))
    w.add(b" ")
    w.astring(enc(cmd.password.reveal()))


def _authenticate(w: _Writer, cmd: c.Authenticate) -> None:
    w.add(b"AUTHENTICATE " + _atom(cmd.mechanism, "SASL mechanism").upper())
    if cmd.initial_response is not None:
        raw = cmd.initial_response.reveal()
        w.add(b" " + (base64.b64encode(raw) if raw else b"="))


def _select(w: _Writer, cmd: c.Select | c.Examine) -> None:
    w.add(_MAILBOX_NAMES[type(cmd)] + b" ")
    w.mailbox(cmd.mailbox)
    params = [b"CONDSTORE"] if cmd.condstore else []
    if cmd.qresync is not None:
        q = cmd.qresync
        known = b"" if q.known_uids is None else b" " + str(q.known_uids).encode()
        params.append(b"QRESYNC (%d %d%s)" % (q.uidvalidity, q.modseq, known))
    if params:
        w.add(b" (" + b" ".join(params) + b")")


def _one_mailbox(w: _Writer, cmd: c.Create | c.Delete | c.Subscribe | c.Unsubscribe) -> None:
    w.add(_MAILBOX_NAMES[type(cmd)] + b" ")
    w.mailbox(cmd.mailbox)


def _rename(w: _Writer, cmd: c.Rename) -> None:
    w.add(b"RENAME ")
    w.mailbox(cmd.mailbox)
    w.add(b" ")
    w.mailbox(cmd.new_name)


def _list(w: _Writer, cmd: c.List | c.Lsub) -> None:
    w.add(b"LIST " if isinstance(cmd, c.List) else b"LSUB ")
    w.mailbox(cmd.reference)
    w.add(b" ")
    pattern = encode_mailbox(cmd.pattern)
    if _LIST_PATTERN_OK.match(pattern):
        w.add(pattern)
    else:
        w.string(pattern)


def _status(w: _Writer, cmd: c.StatusCommand) -> None:
    w.add(b"STATUS ")
    w.mailbox(cmd.mailbox)
    w.add(b" (" + b" ".join(_atom(i, "status item").upper() for i in cmd.items) + b")")


def _fetch(w: _Writer, cmd: c.Fetch) -> None:
    if not cmd.items:
        raise LocalProtocolError("FETCH needs at least one item")
    w.add(b"UID FETCH " if cmd.uid else b"FETCH ")
    w.add(str(cmd.sequence_set).encode())
    w.add(b" (" + b" ".join(_fetch_item(i) for i in cmd.items) + b")")
    if cmd.changed_since is not None:
        vanished = b" VANISHED" if cmd.vanished else b""
        w.add(b" (CHANGEDSINCE %d%s)" % (cmd.changed_since, vanished))


def _search(w: _Writer, cmd: c.Search) -> None:
    w.add(b"UID SEARCH" if cmd.uid else b"SEARCH")
    if cmd.charset is not None:
        w.add(b" CHARSET ")
        w.astring(enc(cmd.charset))
    if not cmd.criteria:
        raise LocalProtocolError("SEARCH needs at least one key")
    for key in cmd.criteria:
        w.add(b" ")
        _search_key(w, key)


def _store(w: _Writer, cmd: c.StoreFlags) -> None:
    w.add(b"UID STORE " if cmd.uid else b"STORE ")
    w.add(str(cmd.sequence_set).encode())
    if cmd.unchanged_since is not None:
        w.add(b" (UNCHANGEDSINCE %d)" % cmd.unchanged_since)
    w.add(b" " + cmd.mode.value.encode() + b"FLAGS")
    if cmd.silent:
        w.add(b".SILENT")
    w.add(b" " + _flags(cmd.flags))


def _copy(w: _Writer, cmd: c.Copy | c.Move) -> None:
    name = b"COPY " if isinstance(cmd, c.Copy) else b"MOVE "
    w.add((b"UID " if cmd.uid else b"") + name + str(cmd.sequence_set).encode() + b" ")
    w.mailbox(cmd.mailbox)


def _uid_expunge(w: _Writer, cmd: c.UidExpunge) -> None:
    w.add(b"UID EXPUNGE " + str(cmd.sequence_set).encode())


def _append(w: _Writer, cmd: c.Append) -> None:
    w.add(b"APPEND ")
    w.mailbox(cmd.mailbox)
    if cmd.message is None:
        raise LocalProtocolError("serialize_command needs the APPEND message")
    _append_message(w, cmd.message, cmd.flags, cmd.date)


def _multi_append(w: _Writer, cmd: c.MultiAppend) -> None:
    w.add(b"APPEND ")
    w.mailbox(cmd.mailbox)
    for one in cmd.messages:
        _append_message(w, one.message, one.flags, one.date)


def _append_message(
    w: _Writer, message: bytes, flags: tuple[str, ...], date: _dt.datetime | None
) -> None:
    if flags:
        w.add(b" " + _flags(flags))
    if date is not None:
        w.add(b' "' + format_date_time(date).encode() + b'"')
    w.add(b" ")
    w.literal(message)


def _enable(w: _Writer, cmd: c.Enable) -> None:
    if not cmd.capabilities:
        raise LocalProtocolError("ENABLE needs at least one capability")
    w.add(b"ENABLE " + b" ".join(_atom(x, "capability") for x in cmd.capabilities))


def _id(w: _Writer, cmd: c.Id) -> None:
    w.add(b"ID ")
    if cmd.params is None:
        w.add(b"NIL")
        return
    w.add(b"(")
    for i, (key, value) in enumerate(cmd.params):
        if i:
            w.add(b" ")
        w.string(enc(key))
        w.add(b" ")
        if value is None:
            w.add(b"NIL")
        else:
            w.string(enc(value))
    w.add(b")")


# Each writer takes its own command type; the table is keyed by that type.
_WRITERS: dict[type, Callable[[_Writer, Any], None]] = {
    c.Login: _login,
    c.Authenticate: _authenticate,
    c.Select: _select,
    c.Examine: _select,
    c.Create: _one_mailbox,
    c.Delete: _one_mailbox,
    c.Subscribe: _one_mailbox,
    c.Unsubscribe: _one_mailbox,
    c.Rename: _rename,
    c.List: _list,
    c.Lsub: _list,
    c.StatusCommand: _status,
    c.Fetch: _fetch,
    c.Search: _search,
    c.StoreFlags: _store,
    c.Copy: _copy,
    c.Move: _copy,
    c.UidExpunge: _uid_expunge,
    c.Append: _append,
    c.MultiAppend: _multi_append,
    c.Enable: _enable,
    c.Id: _id,
}


_SIMPLE_NAMES: dict[type, bytes] = {
    c.Capability: b"CAPABILITY",
    c.Noop: b"NOOP",
    c.Logout: b"LOGOUT",
    c.StartTls: b"STARTTLS",
    c.Namespace: b"NAMESPACE",
    c.Close: b"CLOSE",
    c.Unselect: b"UNSELECT",
    c.Expunge: b"EXPUNGE",
    c.Idle: b"IDLE",
}
_MAILBOX_NAMES: dict[type, bytes] = {
    c.Select: b"SELECT",
    c.Examine: b"EXAMINE",
    c.Create: b"CREATE",
    c.Delete: b"DELETE",
    c.Subscribe: b"SUBSCRIBE",
    c.Unsubscribe: b"UNSUBSCRIBE",
}
