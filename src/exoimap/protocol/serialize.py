"""Typed commands and responses -> bytes.

Commands become a list of pieces: bytes, with :data:`WAIT` wherever a synchronising
literal must wait for the server's ``+`` (the client connection holds the rest back).
Responses become plain bytes (server-to-client literals never wait). Strings are written as
atoms when they can be, quoted when printable, and as literals otherwise. Invalid values
(CR/LF in a text, a streamed body without data...) raise
:class:`~exoimap.errors.LocalProtocolError`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

from exoimap.errors import LocalProtocolError
from exoimap.protocol import commands as c
from exoimap.protocol.structure import body_structure_to_value, envelope_to_value
from exoimap.protocol.types import (
    AppendUidCode,
    BareResponseCode,
    CapabilityCode,
    CapabilityResponse,
    ContinuationRequest,
    CopyUidCode,
    EnabledResponse,
    ESearchResponse,
    ExistsResponse,
    ExpungeResponse,
    FetchResponse,
    FlagsResponse,
    IdResponse,
    ListResponse,
    NamespaceList,
    NamespaceResponse,
    NumberCode,
    PermanentFlagsCode,
    RecentResponse,
    Response,
    ResponseCode,
    SearchResponse,
    SimpleCode,
    StatusData,
    StatusResponse,
    UnknownResponse,
    Value,
    VanishedResponse,
)
from exoimap.protocol.utf7 import encode_mailbox

__all__ = [
    "WAIT",
    "Piece",
    "enc",
    "serialize_command",
    "serialize_response",
    "serialize_value",
]


class _Wait:
    """Marks where a synchronising literal waits for the server's continuation."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "WAIT"


WAIT = _Wait()
Piece = bytes | _Wait

_ATOM_OK = re.compile(rb'[^\x00-\x20\x7f(){%*"\\\]]+\Z')
_ASTRING_OK = re.compile(rb'[^\x00-\x20\x7f(){%*"\\]+\Z')
_LIST_PATTERN_OK = re.compile(rb'[^\x00-\x20\x7f(){"\\]+\Z')
_SEQ_OK = re.compile(rb"[0-9*:,$]+\Z")
_QUOTABLE = re.compile(rb"[\x20-\x7e]*\Z")
_FLAG_OK = re.compile(rb'\\?[^\x00-\x20\x7f(){%*"\\\]]+\Z|\\\*\Z')
_EXCHANGE_QUOTE = frozenset(b"(){ %*]")
_MAX_QUOTED = 1024


def enc(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError("text that cannot be encoded") from exc


def _no_crlf(data: bytes, what: str) -> bytes:
    if b"\r" in data or b"\n" in data:
        raise LocalProtocolError(f"{what} must not contain CR or LF")
    return data


def _quote(data: bytes) -> bytes:
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


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
        if len(data) <= self.literal_plus_max:
            self.text += b"{%d+}\r\n" % len(data)
            self.text += data
            return
        self.text += b"{%d}\r\n" % len(data)
        self.pieces += [bytes(self.text), WAIT]
        self.text = bytearray(data)

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


def _atom(text: str, what: str) -> bytes:
    data = enc(text)
    if not _ATOM_OK.match(data):
        raise LocalProtocolError(f"invalid {what}: {text[:40]!r}")
    return data


def _flags(flags: Iterable[str]) -> bytes:
    out = []
    for flag in flags:
        data = enc(flag)
        if not _FLAG_OK.match(data):
            raise LocalProtocolError(f"invalid flag: {flag[:40]!r}")
        out.append(data)
    return b"(" + b" ".join(out) + b")"


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
    if isinstance(cmd, c.Login):
        w.add(b"LOGIN ")
        w.astring(enc(cmd.username))
        w.add(b" ")
        w.astring(enc(cmd.password.reveal()))
    elif isinstance(cmd, c.Authenticate):
        w.add(b"AUTHENTICATE " + _atom(cmd.mechanism, "SASL mechanism").upper())
        if cmd.initial_response is not None:
            raw = cmd.initial_response.reveal()
            w.add(b" " + (base64.b64encode(raw) if raw else b"="))
    elif isinstance(cmd, c.Select | c.Examine | c.Create | c.Delete | c.Subscribe):
        w.add(_MAILBOX_NAMES[type(cmd)] + b" ")
        w.mailbox(cmd.mailbox)
    elif isinstance(cmd, c.Unsubscribe):
        w.add(b"UNSUBSCRIBE ")
        w.mailbox(cmd.mailbox)
    elif isinstance(cmd, c.Rename):
        w.add(b"RENAME ")
        w.mailbox(cmd.mailbox)
        w.add(b" ")
        w.mailbox(cmd.new_name)
    elif isinstance(cmd, c.List | c.Lsub):
        w.add(b"LIST " if isinstance(cmd, c.List) else b"LSUB ")
        w.mailbox(cmd.reference)
        w.add(b" ")
        pattern = encode_mailbox(cmd.pattern)
        if _LIST_PATTERN_OK.match(pattern):
            w.add(pattern)
        else:
            w.string(pattern)
    elif isinstance(cmd, c.StatusCommand):
        w.add(b"STATUS ")
        w.mailbox(cmd.mailbox)
        w.add(b" (" + b" ".join(_atom(i, "status item").upper() for i in cmd.items) + b")")
    elif isinstance(cmd, c.Fetch):
        if not cmd.items:
            raise LocalProtocolError("FETCH needs at least one item")
        w.add(b"UID FETCH " if cmd.uid else b"FETCH ")
        w.add(str(cmd.sequence_set).encode())
        w.add(b" (" + b" ".join(_fetch_item(i) for i in cmd.items) + b")")
        if cmd.changed_since is not None:
            w.add(b" (CHANGEDSINCE %d)" % cmd.changed_since)
    elif isinstance(cmd, c.Search):
        w.add(b"UID SEARCH" if cmd.uid else b"SEARCH")
        if cmd.charset is not None:
            w.add(b" CHARSET ")
            w.astring(enc(cmd.charset))
        if not cmd.criteria:
            raise LocalProtocolError("SEARCH needs at least one key")
        for key in cmd.criteria:
            w.add(b" ")
            _search_key(w, key)
    elif isinstance(cmd, c.Store):
        w.add(b"UID STORE " if cmd.uid else b"STORE ")
        w.add(str(cmd.sequence_set).encode())
        if cmd.unchanged_since is not None:
            w.add(b" (UNCHANGEDSINCE %d)" % cmd.unchanged_since)
        w.add(b" " + cmd.mode.value.encode() + b"FLAGS")
        if cmd.silent:
            w.add(b".SILENT")
        w.add(b" " + _flags(cmd.flags))
    elif isinstance(cmd, c.Copy | c.Move):
        name = b"COPY " if isinstance(cmd, c.Copy) else b"MOVE "
        w.add((b"UID " if cmd.uid else b"") + name + str(cmd.sequence_set).encode() + b" ")
        w.mailbox(cmd.mailbox)
    elif isinstance(cmd, c.UidExpunge):
        w.add(b"UID EXPUNGE " + str(cmd.sequence_set).encode())
    elif isinstance(cmd, c.Append):
        w.add(b"APPEND ")
        w.mailbox(cmd.mailbox)
        if cmd.flags:
            w.add(b" " + _flags(cmd.flags))
        if cmd.date is not None:
            w.add(b" " + _quote(_no_crlf(enc(cmd.date), "an APPEND date")))
        w.add(b" ")
        if cmd.message is None:
            raise LocalProtocolError("serialize_command needs the APPEND message")
        w.literal(cmd.message)
    elif isinstance(cmd, c.Enable):
        if not cmd.capabilities:
            raise LocalProtocolError("ENABLE needs at least one capability")
        w.add(b"ENABLE " + b" ".join(_atom(x, "capability") for x in cmd.capabilities))
    elif isinstance(cmd, c.Id):
        w.add(b"ID ")
        if cmd.params is None:
            w.add(b"NIL")
        else:
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
    else:  # pragma: no cover - every Command type is handled above
        raise LocalProtocolError(f"not a command: {type(cmd).__name__}")


_SIMPLE_NAMES: dict[type, bytes] = {
    c.Capability: b"CAPABILITY",
    c.Noop: b"NOOP",
    c.Logout: b"LOGOUT",
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
}


# --- responses -----------------------------------------------------------------------------


def serialize_value(value: Value, depth: int = 0) -> bytes:
    """A generic value: None as NIL, int as a number, bytes as a string, tuple as a list."""
    if value is None:
        return b"NIL"
    if isinstance(value, bool):
        raise LocalProtocolError("a boolean is not an IMAP value")
    if isinstance(value, int):
        if value < 0:
            raise LocalProtocolError("IMAP numbers are never negative")
        return b"%d" % value
    if isinstance(value, bytes):
        return _string(value)
    if depth > 32:
        raise LocalProtocolError("values nested too deeply")
    return b"(" + b" ".join(serialize_value(v, depth + 1) for v in value) + b")"


def _string(data: bytes) -> bytes:
    if len(data) <= _MAX_QUOTED and _QUOTABLE.match(data):
        return _quote(data)
    return b"{%d}\r\n" % len(data) + data


def _nstring(data: bytes | None) -> bytes:
    return b"NIL" if data is None else _string(data)


def exchange_mailbox(name: str) -> bytes:
    """A mailbox name as Exchange writes it: a literal if it holds ``"`` or ``\\``, quoted
    if empty or holding one of ``( ) { SP % * ]``, else a bare atom (spec section 1.6)."""
    data = encode_mailbox(name)
    if b'"' in data or b"\\" in data:
        return b"{%d}\r\n" % len(data) + data
    if not data or any(ch in _EXCHANGE_QUOTE for ch in data) or data.upper() == b"NIL":
        return _quote(data)
    return data


def _code(code: ResponseCode) -> bytes:
    if isinstance(code, SimpleCode):
        body = _atom(code.name, "response code")
    elif isinstance(code, NumberCode):
        body = _atom(code.name, "response code") + b" %d" % code.value
    elif isinstance(code, PermanentFlagsCode):
        body = b"PERMANENTFLAGS " + _flags(code.flags)
    elif isinstance(code, CapabilityCode):
        body = b"CAPABILITY " + b" ".join(_atom(x, "capability") for x in code.capabilities)
    elif isinstance(code, AppendUidCode):
        body = b"APPENDUID %d %s" % (code.uidvalidity, str(code.uids).encode())
    elif isinstance(code, CopyUidCode):
        body = b"COPYUID %d %s %s" % (
            code.uidvalidity,
            str(code.source_uids).encode(),
            str(code.destination_uids).encode(),
        )
    else:
        body = _atom(code.name, "response code")
        if code.args is not None:
            args = _no_crlf(enc(code.args), "response code arguments")
            if b"]" in args:
                raise LocalProtocolError("response code arguments must not contain ']'")
            body += b" " + args
    return b"[" + body + b"]"


def _resp_text(code: ResponseCode | None, text: str) -> bytes:
    data = _no_crlf(enc(text), "response text")
    if code is None:
        if data.startswith(b"["):
            raise LocalProtocolError("response text must not start with '[' without a code")
        return data
    return _code(code) + (b" " + data if data else b"")


def _namespace(ns: NamespaceList) -> bytes:
    if ns is None:
        return b"NIL"
    items = []
    for prefix, delimiter in ns:
        delim = b"NIL" if delimiter is None else _quote(_no_crlf(enc(delimiter), "delimiter"))
        items.append(b"(" + _string(encode_mailbox(prefix)) + b" " + delim + b")")
    return b"(" + b"".join(items) + b")"


def _fetch(f: FetchResponse) -> bytes:
    items: list[bytes] = []
    if f.uid is not None:
        items.append(b"UID %d" % f.uid)
    if f.flags is not None:
        items.append(b"FLAGS " + _flags(f.flags))
    if f.internal_date is not None:
        items.append(b"INTERNALDATE " + _quote(_no_crlf(enc(f.internal_date), "a date")))
    if f.rfc822_size is not None:
        items.append(b"RFC822.SIZE %d" % f.rfc822_size)
    if f.modseq is not None:
        items.append(b"MODSEQ (%d)" % f.modseq)
    if f.envelope is not None:
        items.append(b"ENVELOPE " + serialize_value(envelope_to_value(f.envelope)))
    if f.body_structure is not None:
        items.append(b"BODYSTRUCTURE " + serialize_value(body_structure_to_value(f.body_structure)))
    for body in f.bodies:
        if body.streamed:
            raise LocalProtocolError("a streamed body has no data to send")
        name = _atom(body.name, "fetch item")
        if body.name in ("BODY", "BINARY"):
            name += b"[" + _no_crlf(enc(body.section), "a body section") + b"]"
            if body.origin is not None:
                name += b"<%d>" % body.origin
        if body.data is None:
            items.append(name + b" NIL")
        elif body.name == "BINARY" and b"\x00" in body.data:
            items.append(name + b" ~{%d}\r\n" % len(body.data) + body.data)
        else:
            items.append(name + b" {%d}\r\n" % len(body.data) + body.data)
    for key, value in f.extra:
        items.append(_atom(key, "fetch item") + b" " + serialize_value(value))
    return b"* %d FETCH (" % f.seq + b" ".join(items) + b")"


def serialize_response(response: Response) -> bytes:
    """One response with its final CRLF."""
    r = response
    if isinstance(r, StatusResponse):
        tag = b"*" if r.tag is None else _atom(r.tag, "tag")
        out = tag + b" " + r.status.value.encode()
        body = _resp_text(r.code, r.text)
        if body:
            out += b" " + body
    elif isinstance(r, ContinuationRequest):
        out = b"+" if r.text is None else b"+ " + _no_crlf(enc(r.text), "continuation text")
    elif isinstance(r, BareResponseCode):
        out = _code(r.code) + (b" " + _no_crlf(enc(r.text), "text") if r.text else b"")
    elif isinstance(r, FetchResponse):
        out = _fetch(r)
    elif isinstance(r, CapabilityResponse | EnabledResponse):
        name = b"* CAPABILITY" if isinstance(r, CapabilityResponse) else b"* ENABLED"
        out = b" ".join([name, *(_atom(x, "capability") for x in r.capabilities)])
    elif isinstance(r, ExistsResponse):
        out = b"* %d EXISTS" % r.count
    elif isinstance(r, RecentResponse):
        out = b"* %d RECENT" % r.count
    elif isinstance(r, ExpungeResponse):
        out = b"* %d EXPUNGE" % r.seq
    elif isinstance(r, FlagsResponse):
        out = b"* FLAGS " + _flags(r.flags)
    elif isinstance(r, ListResponse):
        delim = b"NIL" if r.delimiter is None else _quote(_no_crlf(enc(r.delimiter), "delimiter"))
        out = b"* %s %s %s %s" % (
            b"LSUB" if r.lsub else b"LIST",
            _flags(r.attributes),
            delim,
            exchange_mailbox(r.name),
        )
    elif isinstance(r, StatusData):
        items = b" ".join(b"%s %d" % (_atom(k, "status item"), v) for k, v in r.items)
        out = b"* STATUS " + exchange_mailbox(r.mailbox) + b" (" + items + b")"
        if r.trailing_space:
            out += b" "
    elif isinstance(r, SearchResponse):
        out = b"* SEARCH" + b"".join(b" %d" % n for n in r.numbers)
        if r.modseq is not None:
            out += b" (MODSEQ %d)" % r.modseq
    elif isinstance(r, ESearchResponse):
        out = b"* ESEARCH"
        if r.tag is not None:
            out += b" (TAG " + _quote(_no_crlf(enc(r.tag), "tag")) + b")"
        if r.uid:
            out += b" UID"
        for key, value in ((b"MIN", r.min), (b"MAX", r.max), (b"COUNT", r.count)):
            if value is not None:
                out += b" %s %d" % (key, value)
        if r.all is not None:
            out += b" ALL " + str(r.all).encode()
        if r.modseq is not None:
            out += b" MODSEQ %d" % r.modseq
    elif isinstance(r, VanishedResponse):
        out = b"* VANISHED " + (b"(EARLIER) " if r.earlier else b"") + str(r.uids).encode()
    elif isinstance(r, IdResponse):
        if r.params is None:
            out = b"* ID NIL"
        else:
            pairs = [
                _string(enc(k)) + b" " + _nstring(None if v is None else enc(v))
                for k, v in r.params
            ]
            out = b"* ID (" + b" ".join(pairs) + b")"
    elif isinstance(r, NamespaceResponse):
        out = b"* NAMESPACE " + b" ".join(_namespace(n) for n in (r.personal, r.other, r.shared))
    elif isinstance(r, UnknownResponse):
        out = r.raw
    else:  # pragma: no cover - every Response type is handled above
        raise LocalProtocolError(f"not a response: {type(r).__name__}")
    return out + b"\r\n"
