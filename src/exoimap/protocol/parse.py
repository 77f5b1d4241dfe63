"""Server responses: framed bytes -> typed responses (the client side's parser).

:func:`parse_response` takes one framed response (line parts and literals, see
:mod:`.reader`) and returns a :mod:`.types` value. Anything malformed raises
:class:`~exoimap.errors.RemoteProtocolError` and nothing else. Known server quirks are
accepted (Exchange's trailing space after STATUS, its bare ``[COPYUID ...]`` line, ``+``
with or without a space, unquoted control characters in mailbox names).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from exoimap.errors import RemoteProtocolError
from exoimap.protocol.framing import split_message
from exoimap.protocol.parse_fetch import fast_fetch, fast_fetch_with_body, parse_fetch
from exoimap.protocol.reader import Reader, StreamedLiteral, dec
from exoimap.protocol.types import (
    KNOWN_CODES,
    NUMBER_CODES,
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
    FlagsResponse,
    IdResponse,
    ListResponse,
    NamespaceList,
    NamespaceResponse,
    NumberCode,
    OtherCode,
    PermanentFlagsCode,
    RecentResponse,
    Response,
    ResponseCode,
    SearchResponse,
    SequenceSet,
    SimpleCode,
    Status,
    StatusData,
    StatusResponse,
    UnknownResponse,
    VanishedResponse,
)
from exoimap.protocol.utf7 import decode_mailbox_lenient

__all__ = [
    "parse_resp_text",
    "parse_response",
    "parse_response_line",
    "parse_tag",
]

_TAG_RE = re.compile(rb'[^\x00-\x20\x7f(){%*"\\+]+')
_STATUS_NAMES = {s.value.encode(): s for s in Status}


def parse_tag(r: Reader) -> str:
    m = _TAG_RE.match(r.line, r.pos)
    if m is None:
        raise r.error("expected a tag")
    r.pos = m.end()
    return m.group().decode("ascii", "surrogateescape")


# --- response codes ------------------------------------------------------------------------


def _parse_code(inner: bytes) -> ResponseCode:
    name_raw, _, args_raw = inner.partition(b" ")
    name = dec(name_raw).upper()
    if not _:
        if name in KNOWN_CODES:
            return OtherCode(name, None)
        return SimpleCode(name)
    args = dec(args_raw)
    try:
        if name in NUMBER_CODES and args_raw.isdigit() and len(args_raw) <= 20:
            return NumberCode(name, int(args_raw))
        if name == "PERMANENTFLAGS" and args.startswith("(") and args.endswith(")"):
            return PermanentFlagsCode(_words(args[1:-1]))
        if name == "CAPABILITY":
            return CapabilityCode(_words(args))
        if name == "APPENDUID":
            validity, uids = args.split(" ")
            if validity.isdigit():
                return AppendUidCode(int(validity), SequenceSet.parse(uids))
        if name == "COPYUID":
            validity, source, destination = args.split(" ")
            if validity.isdigit():
                return CopyUidCode(
                    int(validity), SequenceSet.parse(source), SequenceSet.parse(destination)
                )
    except (ValueError, RemoteProtocolError):
        pass  # a malformed known code is kept raw, like an unknown one
    return OtherCode(name, args)


def parse_resp_text(r: Reader) -> tuple[ResponseCode | None, str]:
    """``[code] text`` from the reader's position to the end of the line."""
    code: ResponseCode | None = None
    line = r.line
    if r.peek() == 0x5B:  # "["
        close = line.find(b"]", r.pos)
        if close > r.pos + 1:
            code = _parse_code(line[r.pos + 1 : close])
            r.pos = close + 1
            r.maybe(b" ")
    text = r.rest()
    if not r.is_last_part():
        raise r.error("a literal inside response text")
    return code, dec(text)


# --- untagged responses --------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    """Space-separated words (only ASCII spaces separate: other whitespace is data)."""
    return tuple(word for word in text.split(" ") if word)


def _caps(r: Reader) -> tuple[str, ...]:
    text = r.rest()
    if not r.is_last_part():
        raise r.error("a literal in a capability list")
    return _words(dec(text))


def _mailbox(r: Reader) -> str:
    return decode_mailbox_lenient(r.mailbox())


def _list(r: Reader, lsub: bool) -> ListResponse:
    r.sp()
    attributes = r.flag_list()
    r.sp()
    delimiter = None if r.is_nil() else dec(r.quoted())
    r.sp()
    name = _mailbox(r)
    # LIST-EXTENDED data may follow; we keep only the standard fields.
    return ListResponse(attributes, delimiter, name, lsub)


def _status(r: Reader) -> StatusData:
    r.sp()
    mailbox = _mailbox(r)
    r.sp()
    r.expect(b"(")
    items: list[tuple[str, int]] = []
    while True:
        r.skip_spaces()
        if r.maybe(b")"):
            break
        name = dec(r.atom()).upper()
        r.sp()
        items.append((name, r.number()))
    trailing = r.line.endswith(b" ") and r.is_last_part()
    r.end()
    return StatusData(mailbox, tuple(items), trailing)


def _search(r: Reader) -> SearchResponse:
    numbers: list[int] = []
    modseq = None
    while True:
        r.skip_spaces()
        if r.at_end():
            return SearchResponse(tuple(numbers), modseq)
        if r.maybe(b"("):
            if not r.maybe_word(b"MODSEQ "):
                raise r.error("expected MODSEQ")
            modseq = r.number()
            r.expect(b")")
            r.end()
            return SearchResponse(tuple(numbers), modseq)
        numbers.append(r.nz_number())


def _esearch(r: Reader) -> ESearchResponse:
    fields: dict[str, object] = {}
    r.skip_spaces()
    if r.maybe(b"("):
        r.expect(b"TAG ")
        fields["tag"] = dec(r.string())
        r.expect(b")")
    while True:
        r.skip_spaces()
        if r.at_end():
            break
        name = dec(r.atom()).upper()
        if name == "UID":
            fields["uid"] = True
            continue
        r.sp()
        if name in ("MIN", "MAX", "COUNT", "MODSEQ"):
            fields[name.lower()] = r.number()
        elif name == "ALL":
            fields["all"] = SequenceSet.parse(r.sequence_set_text())
        else:
            r.value()  # an extension we do not interpret
    return ESearchResponse(**fields)  # type: ignore[arg-type]  # keys are the field names


def _namespace_list(r: Reader) -> NamespaceList:
    if r.is_nil():
        return None
    r.expect(b"(")
    out: list[tuple[str, str | None]] = []
    while True:
        r.skip_spaces()
        if r.maybe(b")"):
            return tuple(out)
        r.expect(b"(")
        prefix = decode_mailbox_lenient(r.string())
        r.sp()
        delimiter = None if r.is_nil() else dec(r.quoted())
        while not r.maybe(b")"):  # namespace response extensions
            r.sp()
            r.value()
        out.append((prefix, delimiter))


def _namespace(r: Reader) -> NamespaceResponse:
    r.sp()
    personal = _namespace_list(r)
    r.sp()
    other = _namespace_list(r)
    r.sp()
    shared = _namespace_list(r)
    r.end()
    return NamespaceResponse(personal, other, shared)


def _id(r: Reader) -> IdResponse:
    r.sp()
    if r.is_nil():
        r.end()
        return IdResponse(None)
    r.expect(b"(")
    params: list[tuple[str, str | None]] = []
    while True:
        r.skip_spaces()
        if r.maybe(b")"):
            break
        key = dec(r.string())
        r.sp()
        value = r.nstring()
        params.append((key, None if value is None else dec(value)))
    r.end()
    return IdResponse(tuple(params))


def _vanished(r: Reader) -> VanishedResponse:
    r.sp()
    earlier = False
    if r.maybe(b"("):
        r.expect(b"EARLIER)")
        r.sp()
        earlier = True
    uids = SequenceSet.parse(r.sequence_set_text())
    r.end()
    return VanishedResponse(uids, earlier)


# --- dispatch ------------------------------------------------------------------------------


def _numbered(r: Reader) -> Response:
    """``* n FETCH|EXISTS|RECENT|EXPUNGE``."""
    n = r.number()
    r.sp()
    kind = r.atom().upper()
    if kind == b"FETCH":
        if n == 0:
            raise r.error("FETCH for message 0")
        r.sp()
        return parse_fetch(r, n)
    r.end()
    make = _NUMBERED.get(kind)
    if make is None:
        raise r.error("unknown numbered response")
    return make(n)


def _status_response(r: Reader, tag: str | None, status: Status) -> StatusResponse:
    """The rest of ``tag|* OK/NO/BAD/PREAUTH/BYE [code] text`` after the status."""
    if not r.maybe(b" "):
        r.end()
        return StatusResponse(tag, status)
    code, text = parse_resp_text(r)
    return StatusResponse(tag, status, code, text)


def _flags_response(r: Reader) -> FlagsResponse:
    r.sp()
    flags = r.flag_list()
    r.end()
    return FlagsResponse(flags)


_NUMBERED: dict[bytes, Callable[[int], Response]] = {
    b"EXISTS": ExistsResponse,
    b"RECENT": RecentResponse,
    b"EXPUNGE": ExpungeResponse,
}
#: Untagged responses by name, each parser starting just after the name.
_NAMED: dict[bytes, Callable[[Reader], Response]] = {
    b"CAPABILITY": lambda r: CapabilityResponse(_caps(r)),
    b"ENABLED": lambda r: EnabledResponse(_caps(r)),
    b"FLAGS": _flags_response,
    b"LIST": lambda r: _list(r, False),
    b"LSUB": lambda r: _list(r, True),
    b"STATUS": _status,
    b"SEARCH": _search,
    b"ESEARCH": _esearch,
    b"NAMESPACE": _namespace,
    b"ID": _id,
    b"VANISHED": _vanished,
}


def _untagged(r: Reader) -> Response:
    if 0x30 <= r.peek() <= 0x39:
        return _numbered(r)
    kind = r.atom().upper()
    status = _STATUS_NAMES.get(kind)
    if status is not None:
        return _status_response(r, None, status)
    parse = _NAMED.get(kind)
    if parse is not None:
        return parse(r)
    raw = b"".join(_join_raw(r.parts, r.literals))
    return UnknownResponse(raw)


def _join_raw(parts: list[bytes], literals: Sequence[bytes | StreamedLiteral]) -> list[bytes]:
    out: list[bytes] = []
    for i, part in enumerate(parts):
        out.append(part)
        if i < len(literals) and i < len(parts) - 1:
            lit = literals[i]
            out.append(b"\r\n" + (lit if isinstance(lit, bytes) else b""))
    return out


def parse_response(parts: list[bytes], literals: Sequence[bytes | StreamedLiteral]) -> Response:
    """One response from its framed parts (lines without CRLF, and literals)."""
    line = parts[0]
    fast = fast_fetch(line) if len(parts) == 1 else fast_fetch_with_body(parts, literals)
    if fast is not None:
        return fast
    r = Reader(parts, literals)
    c = r.peek()
    if c == 0x2A:  # "*"
        r.expect(b"* ")
        return _untagged(r)
    if c == 0x2B:  # "+"
        r.pos = 1
        if r.at_end():
            return ContinuationRequest(None)
        r.sp()
        raw_text = r.rest()
        if not r.is_last_part():
            raise r.error("a literal inside a continuation request")
        return ContinuationRequest(dec(raw_text))
    if c == 0x5B:  # "[": Exchange's bare response code line
        code, text = parse_resp_text(r)
        if code is None:
            raise r.error("an unterminated response code")
        return BareResponseCode(code, text)
    tag = parse_tag(r)
    r.sp()
    status = _STATUS_NAMES.get(r.atom().upper())
    if status is None or status in (Status.PREAUTH, Status.BYE):
        raise r.error("expected OK, NO or BAD after a tag")
    return _status_response(r, tag, status)


def parse_response_line(data: bytes) -> Response:
    """Parse one complete response given as bytes with literals inline (tests and tools)."""
    parts, literals = split_message(data)
    return parse_response(parts, literals)
