"""FETCH responses: the general item parser (resumable around streamed body literals)
and the fast path for the flag-only lines of a flags scan."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from exoimap.errors import RemoteProtocolError
from exoimap.protocol.dates import parse_date_time
from exoimap.protocol.reader import Reader, StreamedLiteral, dec
from exoimap.protocol.structure import body_structure_from_value, envelope_from_value
from exoimap.protocol.types import BodyData, FetchResponse, Value, fetch_response_from

__all__ = [
    "FAST_FETCH",
    "FetchPrefix",
    "fast_fetch",
    "fast_fetch_match",
    "fast_fetch_with_body",
    "finish_fetch",
    "parse_fetch",
    "parse_fetch_prefix",
]

_BODY_ITEMS = frozenset({"BODY", "BINARY", "RFC822", "RFC822.HEADER", "RFC822.TEXT"})
#: Body items that carry data without a ``[section]``.
_SECTIONLESS_BODIES = frozenset({"RFC822", "RFC822.HEADER", "RFC822.TEXT"})
_FETCH_ITEM_RE = re.compile(rb"([A-Za-z0-9.\-]+)(?:\[([^\]]*)\](?:<(\d{1,20})>)?)?")
_FAST_FLAG_LIST = re.compile(rb"(?:\\?[A-Za-z0-9$_.\-]+(?: \\?[A-Za-z0-9$_.\-]+)*)?")
_SIMPLE_ITEM = re.compile(
    rb" ?(?:(UID|RFC822\.SIZE) (\d{1,20})|FLAGS \(([^()]*)\)"
    rb'|INTERNALDATE "([^"\\\r\n]*)"|MODSEQ \((\d{1,20})\))(?=[ )])'
)
_FLAG = rb"\\?[A-Za-z0-9$_.\-]+"
# The usual start of a FETCH whose body is streamed, matched in one go:
# "* n FETCH (UID u FLAGS (...) INTERNALDATE "..." RFC822.SIZE n BODY[] {n}" (any order).
_FAST_PREFIX = re.compile(
    rb"\* ([1-9]\d{0,9}) FETCH \((?:(?:UID ([1-9]\d{0,9})|FLAGS \(((?:"
    + _FLAG
    + rb"(?: "
    + _FLAG
    + rb')*)?)\)|INTERNALDATE "([^"\\\r\n]*)"|RFC822\.SIZE (\d{1,20})) )*'
    rb"(BODY|BINARY)\[([^\]\r\n]*)\](?:<(\d{1,20})>)? ~?\{(\d{1,20})\}"
)
#: ``* n FETCH (UID u FLAGS (...))`` or with FLAGS first (the flags are checked separately),
#: and ``MODSEQ (m)`` after them (a CONDSTORE server's flags listing).
FAST_FETCH = re.compile(
    rb"\* ([1-9]\d{0,9}) FETCH \((?:UID ([1-9]\d{0,9}) FLAGS \(([^()]*)\)"
    rb"|FLAGS \(([^()]*)\) UID ([1-9]\d{0,9}))(?: MODSEQ \((\d{1,20})\))?\)"
)


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
    while True:
        _simple_items(r, b.fields)
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
        if section is not None and name.endswith(".PEEK"):
            name = name[:-5]  # some servers echo BODY.PEEK[...]; it means BODY[...]
        r.sp()
        if section is not None or name in _SECTIONLESS_BODIES:
            stop = _body_item(r, b, name, m, prefix)
            if stop is not None:
                return stop
        else:
            read = _ITEM_READERS.get(name)
            if read is None:
                b.extra.append((name, r.value()))
            else:
                read(r, b.fields)


def _simple_items(r: Reader, fields: dict[str, object]) -> None:
    """The plain items (UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ) with one regex each,
    as long as they come; flags not seen before are left to the general reader."""
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
                return
            fields["flags"] = flags
        elif kind == 4:
            fields["internal_date"] = parse_date_time(dec(m.group(4)))
        else:
            fields["modseq"] = int(m.group(5))
        r.pos = m.end()
        m = _SIMPLE_ITEM.match(r.line, r.pos)


def _body_item(
    r: Reader, b: _FetchBuilder, name: str, m: re.Match[bytes], prefix: bool
) -> FetchPrefix | None:
    """A body item's value (or BINARY.SIZE); ``m`` is its :data:`_FETCH_ITEM_RE` match. In
    ``prefix`` mode a streamed literal that ends the input stops the parse: the FetchPrefix
    to resume from."""
    section = m.group(2)
    origin = None if m.group(3) is None else int(m.group(3))
    section_text = "" if section is None else dec(section)
    if name == "BINARY.SIZE":
        b.extra.append((f"BINARY.SIZE[{section_text}]", r.number()))
        return None
    if name not in _BODY_ITEMS:
        raise r.error(f"unknown FETCH item {name}[")
    if not r.at_literal():
        value = r.nstring()
        size = None if value is None else len(value)
        b.bodies.append(BodyData(section_text, origin, value, name, False, size))
        return None
    data = r.literal()
    if not isinstance(data, StreamedLiteral):
        b.bodies.append(BodyData(section_text, origin, data, name, False, len(data)))
        return None
    item = BodyData(section_text, origin, None, name, True, data.size)
    if prefix and r.is_last_part():
        known = _FetchBuilder(0)
        known.fields = dict(b.fields)
        known.bodies, known.extra = list(b.bodies), list(b.extra)
        b.bodies.append(item)
        return FetchPrefix(known.build(), item, b)
    b.bodies.append(item)
    return None


# --- the other items, each read into the response's fields ---------------------------------


def _read_uid(r: Reader, fields: dict[str, object]) -> None:
    fields["uid"] = r.nz_number()


def _read_flags(r: Reader, fields: dict[str, object]) -> None:
    start = r.pos
    fields["flags"] = flags = r.flag_list()
    raw = r.line[start + 1 : r.pos - 1]
    if len(_FLAGS_CACHE) < 1024 and _FAST_FLAG_LIST.fullmatch(raw):
        _FLAGS_CACHE[raw] = flags


def _read_size(r: Reader, fields: dict[str, object]) -> None:
    fields["rfc822_size"] = r.number()


def _read_date(r: Reader, fields: dict[str, object]) -> None:
    fields["internal_date"] = parse_date_time(dec(r.quoted()))


def _read_modseq(r: Reader, fields: dict[str, object]) -> None:
    r.expect(b"(")
    fields["modseq"] = r.number()
    r.expect(b")")


def _read_envelope(r: Reader, fields: dict[str, object]) -> None:
    fields["envelope"] = envelope_from_value(r.value())


def _read_structure(r: Reader, fields: dict[str, object]) -> None:
    fields["body_structure"] = body_structure_from_value(r.value())


_ITEM_READERS: dict[str, Callable[[Reader, dict[str, object]], None]] = {
    "UID": _read_uid,
    "FLAGS": _read_flags,
    "RFC822.SIZE": _read_size,
    "INTERNALDATE": _read_date,
    "MODSEQ": _read_modseq,
    "ENVELOPE": _read_envelope,
    "BODYSTRUCTURE": _read_structure,
    "BODY": _read_structure,  # BODY without a section is the non-extensible structure
}


def _fast_prefix(m: re.Match[bytes]) -> FetchPrefix:
    builder = _FetchBuilder(0)
    builder.fields = fields = _fast_fields(m)
    item = _fast_body(m, None)
    builder.bodies.append(item)
    return FetchPrefix(fetch_response_from(dict(fields)), item, builder)


def _fast_fields(m: re.Match[bytes]) -> dict[str, object]:
    """The items of a :data:`_FAST_PREFIX` match before its body."""
    seq, uid, flags, date, size = m.group(1, 2, 3, 4, 5)
    fields: dict[str, object] = {"seq": int(seq)}
    if uid is not None:
        fields["uid"] = int(uid)
    if flags is not None:
        flag_tuple = _FLAGS_CACHE.get(flags)
        if flag_tuple is None:
            flag_tuple = tuple(dec(flags).split())
            if len(_FLAGS_CACHE) < 1024:
                _FLAGS_CACHE[flags] = flag_tuple
        fields["flags"] = flag_tuple
    if date is not None:
        fields["internal_date"] = parse_date_time(dec(date))
    if size is not None:
        fields["rfc822_size"] = int(size)
    return fields


def _fast_body(m: re.Match[bytes], data: bytes | None) -> BodyData:
    """The body item of a :data:`_FAST_PREFIX` match: streamed, or ``data`` read whole."""
    name, section, origin, literal_size = m.group(6, 7, 8, 9)
    return BodyData(
        dec(section),
        None if origin is None else int(origin),
        data,
        name.decode("ascii"),
        data is None,
        int(literal_size),
    )


def fast_fetch_with_body(
    parts: list[bytes], literals: Sequence[bytes | StreamedLiteral]
) -> FetchResponse | None:
    """The usual FETCH of a message small enough to be read whole (``* n FETCH (UID u ...
    BODY[] {size}``, the literal, then ``)``) without the general parser; None for any
    other shape."""
    if len(parts) != 2 or parts[1] != b")":
        return None
    data = literals[0]
    m = _FAST_PREFIX.fullmatch(parts[0])
    if m is None or isinstance(data, StreamedLiteral):
        return None
    fields = _fast_fields(m)
    fields["bodies"] = (_fast_body(m, data),)
    return fetch_response_from(fields)


def parse_fetch(r: Reader, seq: int) -> FetchResponse:
    """The items of ``* seq FETCH (...)``, the reader being just before ``(``."""
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
    if resume is None and len(parts) == 1:
        m = _FAST_PREFIX.fullmatch(parts[0])
        if m is not None:
            return _fast_prefix(m)
    r = Reader([*parts, b""], literals)
    if resume is None:
        r.expect(b"* ")
        seq = r.nz_number()
        r.sp()
        if not r.maybe_word(b"FETCH ("):
            raise r.error("expected FETCH")
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
    if len(parts) == 1 and parts[0] == b")":
        return resume.builder.build()
    result = _fetch_items(Reader(parts, literals), resume.builder, prefix=False)
    assert isinstance(result, FetchResponse)
    return result


def fast_fetch(line: bytes) -> FetchResponse | None:
    """The common ``* n FETCH (UID u FLAGS (...))`` line without the general parser."""
    m = FAST_FETCH.fullmatch(line)
    return None if m is None else fast_fetch_match(m)


def fast_fetch_match(m: re.Match[bytes]) -> FetchResponse | None:
    """The response for a :data:`FAST_FETCH` match; None if its flags are unusual (then
    the general parser must read the line)."""
    seq, uid, flags, flags_first, uid_last, modseq = m.groups()
    if uid is None:
        uid, flags = uid_last, flags_first
    flag_tuple = _FLAGS_CACHE.get(flags)
    if flag_tuple is None:
        if not _FAST_FLAG_LIST.fullmatch(flags):
            return None
        if len(_FLAGS_CACHE) > 1024:
            _FLAGS_CACHE.clear()
        flag_tuple = _FLAGS_CACHE[flags] = tuple(dec(flags).split())
    response: FetchResponse = _new_object(FetchResponse)
    state = response.__dict__
    state["seq"] = int(seq)
    state["uid"] = int(uid)
    state["flags"] = flag_tuple
    if modseq is not None:
        state["modseq"] = int(modseq)
    return response


_new_object = object.__new__
_FLAGS_CACHE: dict[bytes, tuple[str, ...]] = {}
