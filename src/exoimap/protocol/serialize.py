"""Typed responses -> bytes, and the string/flag helpers that commands share.

Responses become plain bytes (server-to-client literals never wait), or pieces when a
large FETCH body should not be copied. Strings are written as atoms when they can be,
quoted when printable, and as literals otherwise. Invalid values (CR/LF in a text, a
streamed body without data...) raise :class:`~exoimap.errors.LocalProtocolError`.
Commands are in :mod:`.serialize_command`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from exoimap.errors import LocalProtocolError
from exoimap.protocol.dates import format_date_time
from exoimap.protocol.structure import body_structure_to_value, envelope_to_value
from exoimap.protocol.types import (
    AppendUidCode,
    BareResponseCode,
    BodyData,
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
    "fetch_head",
    "fetch_next",
    "fetch_tail",
    "serialize_response",
    "serialize_response_pieces",
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
_INLINE_LITERAL = 4096


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


def _body_name(body: BodyData) -> bytes:
    name = _atom(body.name, "fetch item")
    if body.name in ("BODY", "BINARY"):
        name += b"[" + _no_crlf(enc(body.section), "a body section") + b"]"
        if body.origin is not None:
            name += b"<%d>" % body.origin
    return name


def _fetch_items(f: FetchResponse) -> tuple[list[bytes], dict[int, bytes]]:
    """The serialised items, and the large body data to send after item ``i``'s marker."""
    items: list[bytes] = []
    big: dict[int, bytes] = {}
    if f.uid is not None:
        items.append(b"UID %d" % f.uid)
    if f.flags is not None:
        items.append(b"FLAGS " + _flags(f.flags))
    if f.internal_date is not None:
        items.append(b'INTERNALDATE "' + format_date_time(f.internal_date).encode() + b'"')
    if f.rfc822_size is not None:
        items.append(b"RFC822.SIZE %d" % f.rfc822_size)
    if f.modseq is not None:
        items.append(b"MODSEQ (%d)" % f.modseq)
    if f.envelope is not None:
        items.append(b"ENVELOPE " + serialize_value(envelope_to_value(f.envelope)))
    if f.body_structure is not None:
        items.append(b"BODYSTRUCTURE " + serialize_value(body_structure_to_value(f.body_structure)))
    for body in f.bodies:
        _add_body(body, items, big)
    for key, value in f.extra:
        items.append(_atom(key, "fetch item") + b" " + serialize_value(value))
    return items, big


def _add_body(body: BodyData, items: list[bytes], big: dict[int, bytes]) -> None:
    """Append a body item; data too large to copy goes to ``big`` under the item's index."""
    if body.streamed:
        raise LocalProtocolError("a streamed body has no data to send")
    name = _body_name(body)
    if body.data is None:
        items.append(name + b" NIL")
        return
    marker = b" ~{%d}\r\n" if body.name == "BINARY" and b"\x00" in body.data else b" {%d}\r\n"
    if len(body.data) > _INLINE_LITERAL:
        big[len(items)] = body.data
        items.append(name + marker % len(body.data))
    else:
        items.append(name + marker % len(body.data) + body.data)


def _fetch(f: FetchResponse) -> list[bytes]:
    """The response as pieces; large body data stays a piece of its own (not copied)."""
    items, big = _fetch_items(f)
    pieces: list[bytes] = []
    text = b"* %d FETCH (" % f.seq
    for i, item in enumerate(items):
        text += (b" " if i else b"") + item
        data = big.get(i)
        if data is not None:
            pieces += [text, data]
            text = b""
    pieces.append(text + b")\r\n")
    return pieces


def fetch_head(fetch: FetchResponse, body: BodyData, size: int) -> bytes:
    """The start of a FETCH response whose ``body`` literal of ``size`` bytes is sent next:
    ``* seq FETCH (<fetch's items> BODY[section] {size}`` CRLF. Finish with the body data
    and :func:`fetch_tail`."""
    return b"* %d FETCH (" % fetch.seq + b" ".join(_items_and_literal(fetch, body, size))


def fetch_next(between: FetchResponse, body: BodyData, size: int) -> bytes:
    """After a streamed body, the next one of the same FETCH response: the items that came
    between the two (``seq`` is ignored), then ``BODY[section] {size}`` CRLF."""
    return b"".join(b" " + item for item in _items_and_literal(between, body, size))


def _items_and_literal(fetch: FetchResponse, body: BodyData, size: int) -> list[bytes]:
    items, big = _fetch_items(fetch)
    if big:
        raise LocalProtocolError("only small items may come before a streamed body")
    if size < 0:
        raise LocalProtocolError("a negative literal size")
    items.append(_body_name(body) + b" {%d}\r\n" % size)
    return items


def fetch_tail(trailing: FetchResponse | None = None) -> bytes:
    """The end of a FETCH started with :func:`fetch_head`: items after the body (``seq`` is
    ignored) and the closing parenthesis."""
    if trailing is None:
        return b")\r\n"
    items, big = _fetch_items(trailing)
    if big:
        raise LocalProtocolError("only small items may follow a streamed body")
    return b"".join(b" " + item for item in items) + b")\r\n"


def serialize_response_pieces(response: Response) -> list[bytes]:
    """Like :func:`serialize_response`, but large FETCH body data stays a separate piece, so
    a 150 MB message is not copied to build the response."""
    if isinstance(response, FetchResponse):
        return _fetch(response)
    return [serialize_response(response)]


def serialize_response(response: Response) -> bytes:
    """One response with its final CRLF."""
    if isinstance(response, FetchResponse):
        return b"".join(_fetch(response))
    write = _RESPONSE_WRITERS.get(type(response))
    if write is None:
        raise LocalProtocolError(f"not a response: {type(response).__name__}")
    return write(response) + b"\r\n"


# --- one writer per response type (the line without its CRLF) ---------------------------


def _status_response(r: StatusResponse) -> bytes:
    tag = b"*" if r.tag is None else _atom(r.tag, "tag")
    out = tag + b" " + r.status.value.encode()
    body = _resp_text(r.code, r.text)
    return out + b" " + body if body else out


def _continuation(r: ContinuationRequest) -> bytes:
    return b"+" if r.text is None else b"+ " + _no_crlf(enc(r.text), "continuation text")


def _bare_code(r: BareResponseCode) -> bytes:
    return _code(r.code) + (b" " + _no_crlf(enc(r.text), "text") if r.text else b"")


def _capabilities(r: CapabilityResponse | EnabledResponse) -> bytes:
    name = b"* CAPABILITY" if isinstance(r, CapabilityResponse) else b"* ENABLED"
    return b" ".join([name, *(_atom(x, "capability") for x in r.capabilities)])


def _list(r: ListResponse) -> bytes:
    delim = b"NIL" if r.delimiter is None else _quote(_no_crlf(enc(r.delimiter), "delimiter"))
    return b"* %s %s %s %s" % (
        b"LSUB" if r.lsub else b"LIST",
        _flags(r.attributes),
        delim,
        exchange_mailbox(r.name),
    )


def _status_data(r: StatusData) -> bytes:
    items = b" ".join(b"%s %d" % (_atom(k, "status item"), v) for k, v in r.items)
    out = b"* STATUS " + exchange_mailbox(r.mailbox) + b" (" + items + b")"
    return out + b" " if r.trailing_space else out


def _search(r: SearchResponse) -> bytes:
    out = b"* SEARCH" + b"".join(b" %d" % n for n in r.numbers)
    return out if r.modseq is None else out + b" (MODSEQ %d)" % r.modseq


def _esearch(r: ESearchResponse) -> bytes:
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
    return out


def _id(r: IdResponse) -> bytes:
    if r.params is None:
        return b"* ID NIL"
    pairs = [_string(enc(k)) + b" " + _nstring(None if v is None else enc(v)) for k, v in r.params]
    return b"* ID (" + b" ".join(pairs) + b")"


# Each writer takes its own response type; the table is keyed by that type.
_RESPONSE_WRITERS: dict[type, Callable[[Any], bytes]] = {
    StatusResponse: _status_response,
    ContinuationRequest: _continuation,
    BareResponseCode: _bare_code,
    CapabilityResponse: _capabilities,
    EnabledResponse: _capabilities,
    ExistsResponse: lambda r: b"* %d EXISTS" % r.count,
    RecentResponse: lambda r: b"* %d RECENT" % r.count,
    ExpungeResponse: lambda r: b"* %d EXPUNGE" % r.seq,
    FlagsResponse: lambda r: b"* FLAGS " + _flags(r.flags),
    ListResponse: _list,
    StatusData: _status_data,
    SearchResponse: _search,
    ESearchResponse: _esearch,
    VanishedResponse: lambda r: (
        b"* VANISHED " + (b"(EARLIER) " if r.earlier else b"") + str(r.uids).encode()
    ),
    IdResponse: _id,
    NamespaceResponse: lambda r: (
        b"* NAMESPACE " + b" ".join(_namespace(n) for n in (r.personal, r.other, r.shared))
    ),
    UnknownResponse: lambda r: r.raw,
}
