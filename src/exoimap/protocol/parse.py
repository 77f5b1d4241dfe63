"""Server responses: framed bytes -> typed responses (the client side's parser).

:func:`parse_response` takes one framed response (line parts and literals, see
:mod:`.reader`) and returns a :mod:`.types` value. Anything malformed raises
:class:`~exoimap.errors.RemoteProtocolError` and nothing else. Known server quirks are
accepted (Exchange's trailing space after STATUS, its bare ``[COPYUID ...]`` line, ``+``
with or without a space, unquoted control characters in mailbox names).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from exoimap.errors import RemoteProtocolError
from exoimap.protocol.framing import split_message
from exoimap.protocol.reader import Reader, StreamedLiteral, dec
from exoimap.protocol.structure import body_structure_from_value, envelope_from_value
from exoimap.protocol.types import (
    KNOWN_CODES,
    NUMBER_CODES,
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
    Value,
    VanishedResponse,
    fetch_response_from,
)
from exoimap.protocol.utf7 import decode_mailbox_lenient

__all__ = [
    "FetchPrefix",
    "fast_fetch",
    "finish_fetch",
    "parse_fetch_prefix",
    "parse_resp_text",
    "parse_response",
    "parse_response_line",
    "parse_tag",
]

_TAG_RE = re.compile(rb'[^\x00-\x20\x7f(){%*"\\+]+')
_STATUS_NAMES = {s.value.encode(): s for s in Status}
_BODY_ITEMS = frozenset({"BODY", "BINARY", "RFC822", "RFC822.HEADER", "RFC822.TEXT"})
_FETCH_ITEM_RE = re.compile(rb"([A-Za-z0-9.\-]+)(?:\[([^\]]*)\](?:<(\d{1,20})>)?)?")
_FAST_FLAG_LIST = re.compile(rb"(?:\\?[A-Za-z0-9$_.\-]+(?: \\?[A-Za-z0-9$_.\-]+)*)?")
_SIMPLE_ITEM = re.compile(
    rb" ?(?:(UID|RFC822\.SIZE) (\d{1,20})|FLAGS \(([^()]*)\)"
    rb'|INTERNALDATE "([^"\\\r\n]*)"|MODSEQ \((\d{1,20})\))(?=[ )])'
)
_FAST_FETCH_UF = re.compile(rb"\* (\d{1,10}) FETCH \(UID (\d{1,10}) FLAGS \(([^()]*)\)\)")
_FAST_FETCH_FU = re.compile(rb"\* (\d{1,10}) FETCH \(FLAGS \(([^()]*)\) UID (\d{1,10})\)")


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
            return PermanentFlagsCode(tuple(args[1:-1].split()))
        if name == "CAPABILITY":
            return CapabilityCode(tuple(args.split()))
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


def _caps(r: Reader) -> tuple[str, ...]:
    text = r.rest()
    if not r.is_last_part():
        raise r.error("a literal in a capability list")
    return tuple(dec(text).split())


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
            if r.line[r.pos : r.pos + 7].upper() != b"MODSEQ ":
                raise r.error("expected MODSEQ")
            r.pos += 7
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
            fields["all"] = SequenceSet.parse(dec(r.atom()))
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
    uids = SequenceSet.parse(dec(r.atom()))
    r.end()
    return VanishedResponse(uids, earlier)


# --- FETCH ---------------------------------------------------------------------------------


class _FetchBuilder:
    __slots__ = ("bodies", "extra", "fields")

    def __init__(self, seq: int) -> None:
        self.fields: dict[str, object] = {"seq": seq}
        self.bodies: list[BodyData] = []
        self.extra: list[tuple[str, Value]] = []

    def build(self) -> FetchResponse:
        fields = self.fields
        if self.bodies:
            fields["bodies"] = tuple(self.bodies)
        if self.extra:
            fields["extra"] = tuple(self.extra)
        return fetch_response_from(fields)


class FetchPrefix:
    """A FETCH response parsed up to a literal that is being streamed: ``fetch`` has the
    items before it, ``body`` describes the literal. Parsing resumes from here."""

    __slots__ = ("body", "builder", "fetch")

    def __init__(self, fetch: FetchResponse, body: BodyData, builder: _FetchBuilder) -> None:
        self.fetch = fetch
        self.body = body
        self.builder = builder


def _fetch_items(r: Reader, b: _FetchBuilder, prefix: bool) -> FetchResponse | FetchPrefix:
    """Items up to the closing parenthesis (the reader is just after ``(`` or after a
    streamed literal). In ``prefix`` mode, stop at a streamed literal ending the input."""
    fields = b.fields
    while True:
        # The plain items (UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ) in one regex each.
        m = _SIMPLE_ITEM.match(r.line, r.pos)
        while m is not None:
            kind = m.lastindex
            if kind == 2:
                if m.group(1) == b"UID":
                    uid = int(m.group(2))
                    if not uid:
                        raise r.error("UID 0")
                    fields["uid"] = uid
                else:
                    fields["rfc822_size"] = int(m.group(2))
            elif kind == 3:
                flags = _FLAGS_CACHE.get(m.group(3))
                if flags is None:
                    break  # unusual flags: the general code below reads them
                fields["flags"] = flags
            elif kind == 4:
                fields["internal_date"] = dec(m.group(4))
            else:
                fields["modseq"] = int(m.group(5))
            r.pos = m.end()
            m = _SIMPLE_ITEM.match(r.line, r.pos)
        r.skip_spaces()
        if r.maybe(b")"):
            r.end()
            return b.build()
        m = _FETCH_ITEM_RE.match(r.line, r.pos)
        if m is None:
            raise r.error("expected a FETCH item")
        r.pos = m.end()
        name = m.group(1).decode("ascii").upper()
        section = m.group(2)
        r.sp()
        if section is not None or (name in _BODY_ITEMS and name not in ("BODY", "BINARY")):
            origin = None if m.group(3) is None else int(m.group(3))
            section_text = "" if section is None else dec(section)
            if name == "BINARY.SIZE":
                b.extra.append((f"BINARY.SIZE[{section_text}]", r.number()))
                continue
            if name not in _BODY_ITEMS:
                raise r.error(f"unknown FETCH item {name}[")
            if r.at_literal():
                data = r.literal()
                if isinstance(data, StreamedLiteral):
                    item = BodyData(section_text, origin, None, name, True, data.size)
                    if prefix and r.is_last_part():
                        known = _FetchBuilder(0)
                        known.fields = dict(fields)
                        known.bodies, known.extra = list(b.bodies), list(b.extra)
                        b.bodies.append(item)
                        return FetchPrefix(known.build(), item, b)
                else:
                    item = BodyData(section_text, origin, data, name, False, len(data))
            else:
                value = r.nstring()
                size = None if value is None else len(value)
                item = BodyData(section_text, origin, value, name, False, size)
            b.bodies.append(item)
        elif name == "UID":
            fields["uid"] = r.nz_number()
        elif name == "FLAGS":
            start = r.pos
            fields["flags"] = flags = r.flag_list()
            raw = r.line[start + 1 : r.pos - 1]
            if len(_FLAGS_CACHE) < 1024 and _FAST_FLAG_LIST.fullmatch(raw):
                _FLAGS_CACHE[raw] = flags
        elif name == "RFC822.SIZE":
            fields["rfc822_size"] = r.number()
        elif name == "INTERNALDATE":
            fields["internal_date"] = dec(r.quoted())
        elif name == "MODSEQ":
            r.expect(b"(")
            fields["modseq"] = r.number()
            r.expect(b")")
        elif name == "ENVELOPE":
            fields["envelope"] = envelope_from_value(r.value())
        elif name in ("BODYSTRUCTURE", "BODY"):
            fields["body_structure"] = body_structure_from_value(r.value())
        else:
            b.extra.append((name, r.value()))


def _fetch(r: Reader, seq: int) -> FetchResponse:
    r.expect(b"(")
    result = _fetch_items(r, _FetchBuilder(seq), prefix=False)
    assert isinstance(result, FetchResponse)
    return result


def parse_fetch_prefix(
    parts: list[bytes],
    literals: Sequence[bytes | StreamedLiteral],
    resume: FetchPrefix | None = None,
) -> FetchPrefix:
    """Parse a FETCH response up to the streamed literal that ends ``parts``; with
    ``resume``, ``parts`` and ``literals`` are what followed the previous streamed literal.

    Raises :class:`RemoteProtocolError` if that literal is not the value of a body item.
    """
    r = Reader([*parts, b""], literals)
    if resume is None:
        r.expect(b"* ")
        seq = r.nz_number()
        r.sp()
        if r.line[r.pos : r.pos + 7].upper() != b"FETCH (":
            raise r.error("expected FETCH")
        r.pos += 7
        builder = _FetchBuilder(seq)
    else:
        builder = resume.builder
        saved = (dict(builder.fields), list(builder.bodies), list(builder.extra))
    try:
        result = _fetch_items(r, builder, prefix=True)
        if not isinstance(result, FetchPrefix):
            raise r.error("a large literal outside a body item")
    except RemoteProtocolError:
        if resume is not None:  # leave the resumable state as it was
            builder.fields, builder.bodies, builder.extra = saved
        raise
    return result


def finish_fetch(
    resume: FetchPrefix, parts: list[bytes], literals: Sequence[bytes | StreamedLiteral]
) -> FetchResponse:
    """The complete FETCH response, from what followed the last streamed literal."""
    result = _fetch_items(Reader(parts, literals), resume.builder, prefix=False)
    assert isinstance(result, FetchResponse)
    return result


# --- dispatch ------------------------------------------------------------------------------


def _untagged(r: Reader) -> Response:
    c = r.peek()
    if 0x30 <= c <= 0x39:
        n = r.number()
        r.sp()
        kind = r.atom().upper()
        if kind == b"FETCH":
            r.sp()
            return _fetch(r, n)
        r.end()
        if kind == b"EXISTS":
            return ExistsResponse(n)
        if kind == b"RECENT":
            return RecentResponse(n)
        if kind == b"EXPUNGE":
            return ExpungeResponse(n)
        raise r.error("unknown numbered response")
    kind = r.atom().upper()
    status = _STATUS_NAMES.get(kind)
    if status is not None:
        if not r.maybe(b" "):
            r.end()
            return StatusResponse(None, status)
        code, text = parse_resp_text(r)
        return StatusResponse(None, status, code, text)
    if kind == b"CAPABILITY":
        return CapabilityResponse(_caps(r))
    if kind == b"ENABLED":
        return EnabledResponse(_caps(r))
    if kind == b"FLAGS":
        r.sp()
        flags = r.flag_list()
        r.end()
        return FlagsResponse(flags)
    if kind in (b"LIST", b"LSUB"):
        return _list(r, kind == b"LSUB")
    if kind == b"STATUS":
        return _status(r)
    if kind == b"SEARCH":
        return _search(r)
    if kind == b"ESEARCH":
        return _esearch(r)
    if kind == b"NAMESPACE":
        return _namespace(r)
    if kind == b"ID":
        return _id(r)
    if kind == b"VANISHED":
        return _vanished(r)
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
    if len(parts) == 1:
        fast = fast_fetch(line)
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
    if not r.maybe(b" "):
        r.end()
        return StatusResponse(tag, status)
    code, text = parse_resp_text(r)
    return StatusResponse(tag, status, code, text)


def parse_response_line(data: bytes) -> Response:
    """Parse one complete response given as bytes with literals inline (tests and tools)."""
    parts, literals = split_message(data)
    return parse_response(parts, literals)


def fast_fetch(line: bytes) -> FetchResponse | None:
    """The common ``* n FETCH (UID u FLAGS (...))`` line without the general parser."""
    if not line.startswith(b"* "):
        return None
    m = _FAST_FETCH_UF.fullmatch(line)
    if m is not None:
        seq, uid, flags = m.groups()
    else:
        m = _FAST_FETCH_FU.fullmatch(line)
        if m is None:
            return None
        seq, flags, uid = m.groups()
    if seq[0] == 0x30 or uid[0] == 0x30:
        return None  # zero or leading zeros: let the general parser decide
    flag_tuple = _FLAGS_CACHE.get(flags)
    if flag_tuple is None:
        if not _FAST_FLAG_LIST.fullmatch(flags):
            return None  # unusual flags: the general parser decides
        if len(_FLAGS_CACHE) > 1024:
            _FLAGS_CACHE.clear()
        flag_tuple = _FLAGS_CACHE[flags] = tuple(dec(flags).split())
    return fetch_response_from({"seq": int(seq), "uid": int(uid), "flags": flag_tuple})


_FLAGS_CACHE: dict[bytes, tuple[str, ...]] = {}
