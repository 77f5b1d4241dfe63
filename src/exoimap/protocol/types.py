"""Typed values of the IMAP protocol: sequence sets, response codes, responses, fetch data.

Everything here is a frozen dataclass (hashable, comparable), so the round-trip property
``parse(serialize(x)) == x`` is plain equality. Commands live in :mod:`.commands`.

Strings: mailbox names, flags, capability names and human texts are ``str`` (decoded as
UTF-8 with ``surrogateescape``, so any byte survives a round trip); message data (bodies,
envelope fields) stays ``bytes``.
"""

from __future__ import annotations

import datetime as _dt
import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from exoimap.errors import LocalProtocolError, RemoteProtocolError
from exoimap.protocol.values import value_class

__all__ = [
    "Address",
    "AppendUidCode",
    "BareResponseCode",
    "BodyData",
    "BodyPart",
    "BodyStructure",
    "CapabilityCode",
    "CapabilityResponse",
    "ContinuationRequest",
    "CopyUidCode",
    "Disposition",
    "EnabledResponse",
    "Envelope",
    "ESearchResponse",
    "ExistsResponse",
    "ExpungeResponse",
    "FetchResponse",
    "FlagsResponse",
    "IdResponse",
    "ListResponse",
    "Multipart",
    "NamespaceList",
    "NamespaceResponse",
    "NumberCode",
    "OtherCode",
    "PermanentFlagsCode",
    "RecentResponse",
    "Response",
    "ResponseCode",
    "SearchResponse",
    "SequenceSet",
    "SimpleCode",
    "Status",
    "StatusData",
    "StatusResponse",
    "UnknownResponse",
    "Value",
    "VanishedResponse",
]

#: A generic parsed IMAP value: NIL, a number, a string/atom, or a parenthesised list.
Value = None | int | bytes | tuple["Value", ...]

_SEQ_RANGE = re.compile(r"(\d+|\*)(?::(\d+|\*))?\Z")
MAX_NUMBER = 0xFFFFFFFF


# --- sequence sets -------------------------------------------------------------------------


@value_class
class SequenceSet:
    """A set of message numbers or UIDs, e.g. ``1:5,7,10:*``.

    ``ranges`` holds ``(start, end)`` pairs; ``None`` stands for ``*`` (the largest number in
    use). A single number ``n`` is ``(n, n)``.
    """

    ranges: tuple[tuple[int | None, int | None], ...]

    def __post_init__(self) -> None:
        if not self.ranges:
            raise LocalProtocolError("a sequence set needs at least one number")
        for start, end in self.ranges:
            for n in (start, end):
                if n is not None and not 0 < n <= MAX_NUMBER:
                    raise LocalProtocolError(f"sequence number out of range: {n}")

    @classmethod
    def of(cls, *numbers: int) -> SequenceSet:
        """The compact set holding exactly ``numbers`` (consecutive runs become ranges)."""
        ordered = sorted(set(numbers))
        if not ordered:
            raise LocalProtocolError("a sequence set needs at least one number")
        ranges: list[tuple[int | None, int | None]] = []
        start = prev = ordered[0]
        for n in ordered[1:]:
            if n == prev + 1:
                prev = n
                continue
            ranges.append((start, prev))
            start = prev = n
        ranges.append((start, prev))
        return cls(tuple(ranges))

    @classmethod
    def range(cls, start: int, end: int | None = None) -> SequenceSet:
        """``start:end``; ``end=None`` means ``start:*``."""
        return cls(((start, end),))

    @classmethod
    def all(cls) -> SequenceSet:
        """``1:*``."""
        return cls(((1, None),))

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        """Parse ``1:5,7,10:*``; raises :class:`RemoteProtocolError` if malformed."""
        ranges: list[tuple[int | None, int | None]] = []
        for part in text.split(","):
            m = _SEQ_RANGE.match(part)
            if not m:
                raise RemoteProtocolError(f"invalid sequence set: {text[:80]!r}")
            start = None if m.group(1) == "*" else int(m.group(1))
            end_text = m.group(2)
            end = start if end_text is None else (None if end_text == "*" else int(end_text))
            for n in (start, end):
                if n is not None and not 0 < n <= MAX_NUMBER:
                    raise RemoteProtocolError(f"sequence number out of range in {text[:80]!r}")
            ranges.append((start, end))
        return cls(tuple(ranges))

    def __str__(self) -> str:
        parts = []
        for start, end in self.ranges:
            a = "*" if start is None else str(start)
            if start == end:
                parts.append(a)
            else:
                parts.append(a + ":" + ("*" if end is None else str(end)))
        return ",".join(parts)

    def __iter__(self) -> Iterator[int]:
        """The numbers in order of appearance; only for sets without ``*``."""
        for start, end in self.ranges:
            if start is None or end is None:
                raise LocalProtocolError("cannot enumerate a sequence set containing '*'")
            lo, hi = min(start, end), max(start, end)
            yield from range(lo, hi + 1)

    def __contains__(self, number: object) -> bool:
        """Whether ``number`` is in the set; ``*`` counts as the largest number there is."""
        if not isinstance(number, int):
            return False
        for start, end in self.ranges:  # a streamed FETCH asks this of every message
            lo = MAX_NUMBER if start is None else start
            hi = MAX_NUMBER if end is None else end
            if lo <= number <= hi or hi <= number <= lo:
                return True
        return False


# --- response codes ------------------------------------------------------------------------


@value_class
class SimpleCode:
    """A response code without arguments: ALERT, READ-ONLY, READ-WRITE, TRYCREATE,
    AUTHENTICATIONFAILED, CLOSED, PARSE, ..."""

    name: str


@value_class
class NumberCode:
    """UIDVALIDITY, UIDNEXT, UNSEEN or HIGHESTMODSEQ with its number."""

    name: str
    value: int


@value_class
class PermanentFlagsCode:
    flags: tuple[str, ...]


@value_class
class CapabilityCode:
    capabilities: tuple[str, ...]


@value_class
class AppendUidCode:
    uidvalidity: int
    uids: SequenceSet


@value_class
class CopyUidCode:
    uidvalidity: int
    source_uids: SequenceSet
    destination_uids: SequenceSet


@value_class
class OtherCode:
    """A code we do not interpret, kept as sent: ``[name args]`` (``args`` None if absent)."""

    name: str
    args: str | None = None


ResponseCode = (
    SimpleCode
    | NumberCode
    | PermanentFlagsCode
    | CapabilityCode
    | AppendUidCode
    | CopyUidCode
    | OtherCode
)

NUMBER_CODES = frozenset({"UIDVALIDITY", "UIDNEXT", "UNSEEN", "HIGHESTMODSEQ"})
SIMPLE_CODES = frozenset(
    {
        "ALERT",
        "PARSE",
        "READ-ONLY",
        "READ-WRITE",
        "TRYCREATE",
        "AUTHENTICATIONFAILED",
        "AUTHORIZATIONFAILED",
        "CLOSED",
        "NOMODSEQ",
        "UIDNOTSTICKY",
        "EXPUNGEISSUED",
        "UNAVAILABLE",
        "EXPIRED",
        "PRIVACYREQUIRED",
        "CONTACTADMIN",
        "NOPERM",
        "INUSE",
        "CORRUPTION",
        "SERVERBUG",
        "CLIENTBUG",
        "CANNOT",
        "LIMIT",
        "OVERQUOTA",
        "ALREADYEXISTS",
        "NONEXISTENT",
        "TOOBIG",
    }
)
#: Codes whose arguments we interpret; anything else becomes :class:`OtherCode`.
KNOWN_CODES = NUMBER_CODES | {"PERMANENTFLAGS", "CAPABILITY", "APPENDUID", "COPYUID"}


# --- responses -----------------------------------------------------------------------------


class Status(enum.Enum):
    OK = "OK"
    NO = "NO"
    BAD = "BAD"
    PREAUTH = "PREAUTH"
    BYE = "BYE"


@value_class
class StatusResponse:
    """``tag OK|NO|BAD [code] text`` or untagged (``tag=None``) OK/NO/BAD/PREAUTH/BYE."""

    tag: str | None
    status: Status
    code: ResponseCode | None = None
    text: str = ""


@value_class
class ContinuationRequest:
    """``+ text``. ``text=None`` is a bare ``+`` (Exchange sends this); ``""`` is ``+ ``."""

    text: str | None = None


@value_class
class BareResponseCode:
    """Exchange's line holding only a response code, e.g. ``[COPYUID 55 31 6]``."""

    code: ResponseCode
    text: str = ""


@value_class
class CapabilityResponse:
    capabilities: tuple[str, ...]


@value_class
class EnabledResponse:
    capabilities: tuple[str, ...]


@value_class
class ExistsResponse:
    count: int


@value_class
class RecentResponse:
    count: int


@value_class
class ExpungeResponse:
    seq: int


@value_class
class FlagsResponse:
    flags: tuple[str, ...]


@value_class
class ListResponse:
    """``* LIST (attributes) delimiter name`` (or LSUB). ``name`` is decoded from modified
    UTF-7 when it is valid modified UTF-7, else kept as sent."""

    attributes: tuple[str, ...]
    delimiter: str | None
    name: str
    lsub: bool = False


@value_class
class StatusData:
    """``* STATUS mailbox (MESSAGES 3 UIDNEXT 7 ...)``. ``trailing_space`` records (and
    reproduces) Exchange's space at the end of the line."""

    mailbox: str
    items: tuple[tuple[str, int], ...]
    trailing_space: bool = False

    def get(self, name: str) -> int | None:
        upper = name.upper()
        for key, value in self.items:
            if key == upper:
                return value
        return None


@value_class
class SearchResponse:
    numbers: tuple[int, ...]
    modseq: int | None = None


@value_class
class ESearchResponse:
    tag: str | None = None
    uid: bool = False
    min: int | None = None
    max: int | None = None
    count: int | None = None
    all: SequenceSet | None = None
    modseq: int | None = None


@value_class
class VanishedResponse:
    uids: SequenceSet
    earlier: bool = False


@value_class
class IdResponse:
    """``* ID ("name" "value" ...)`` or ``* ID NIL`` (``params=None``)."""

    params: tuple[tuple[str, str | None], ...] | None


NamespaceList = tuple[tuple[str, str | None], ...] | None


@value_class
class NamespaceResponse:
    """Each namespace is a tuple of ``(prefix, delimiter)`` pairs, or None for NIL."""

    personal: NamespaceList
    other: NamespaceList
    shared: NamespaceList


@value_class
class UnknownResponse:
    """An untagged response we do not interpret, kept whole (without the final CRLF)."""

    raw: bytes


# --- fetch ---------------------------------------------------------------------------------


@value_class
class Address:
    name: bytes | None
    adl: bytes | None
    mailbox: bytes | None
    host: bytes | None


@value_class
class Envelope:
    date: bytes | None = None
    subject: bytes | None = None
    from_: tuple[Address, ...] | None = None
    sender: tuple[Address, ...] | None = None
    reply_to: tuple[Address, ...] | None = None
    to: tuple[Address, ...] | None = None
    cc: tuple[Address, ...] | None = None
    bcc: tuple[Address, ...] | None = None
    in_reply_to: bytes | None = None
    message_id: bytes | None = None


@value_class
class Disposition:
    type: str
    params: tuple[tuple[str, str], ...] = ()


@value_class
class BodyPart:
    """A single (non-multipart) body part of a BODYSTRUCTURE."""

    type: str
    subtype: str
    params: tuple[tuple[str, str], ...] = ()
    id: str | None = None
    description: str | None = None
    encoding: str | None = None
    size: int = 0
    lines: int | None = None
    md5: str | None = None
    disposition: Disposition | None = None
    language: tuple[str, ...] | None = None
    location: str | None = None
    #: For message/rfc822 parts: the enclosed message's envelope and structure.
    envelope: Envelope | None = None
    body: BodyStructure | None = None


@value_class
class Multipart:
    parts: tuple[BodyStructure, ...]
    subtype: str
    params: tuple[tuple[str, str], ...] = ()
    disposition: Disposition | None = None
    language: tuple[str, ...] | None = None
    location: str | None = None


BodyStructure = BodyPart | Multipart


@value_class
class BodyData:
    """One ``BODY[section]<origin>`` (or ``BINARY[...]``, ``RFC822``...) item of a FETCH.

    ``section`` is the text between the brackets as sent (``""``, ``HEADER``,
    ``1.2.TEXT``, ``HEADER.FIELDS (MESSAGE-ID)``). ``name`` is ``BODY``, ``BINARY``,
    ``RFC822``, ``RFC822.HEADER`` or ``RFC822.TEXT``. ``data`` is None for NIL and for a
    literal that was streamed as :class:`~exoimap.protocol.events.BodyChunk` events; then
    ``size`` holds the literal's length.
    """

    section: str = ""
    origin: int | None = None
    data: bytes | None = None
    name: str = "BODY"
    streamed: bool = False
    size: int | None = None


@dataclass(frozen=True)
class FetchResponse:
    """``* seq FETCH (...)`` with the items we interpret as fields; others are in ``extra``
    as ``(NAME, value)`` pairs.

    (No ``__slots__`` here: the parser builds these through the instance ``__dict__``,
    4x faster than the frozen ``__init__``, which matters at 150,000 lines/s.)
    """

    seq: int
    uid: int | None = None
    flags: tuple[str, ...] | None = None
    internal_date: _dt.datetime | None = None
    rfc822_size: int | None = None
    modseq: int | None = None
    envelope: Envelope | None = None
    body_structure: BodyStructure | None = None
    bodies: tuple[BodyData, ...] = ()
    extra: tuple[tuple[str, Value], ...] = field(default=())

    def body(self, section: str = "") -> BodyData | None:
        """The BODY[section] item, if present."""
        for item in self.bodies:
            if item.section == section and item.name in ("BODY", "BINARY"):
                return item
        return None


_new_object = object.__new__


def fetch_response_from(fields: dict[str, object]) -> FetchResponse:
    """A FetchResponse from field values (``seq`` required) without the frozen
    ``__init__``'s per-field ``object.__setattr__`` calls: fields left out fall back to the
    class attributes, which the dataclass sets to the defaults. For the parser only:
    ``fields`` must hold valid FetchResponse field names and types."""
    response: FetchResponse = _new_object(FetchResponse)
    response.__dict__.update(fields)
    return response


Response = (
    StatusResponse
    | ContinuationRequest
    | BareResponseCode
    | CapabilityResponse
    | EnabledResponse
    | ExistsResponse
    | RecentResponse
    | ExpungeResponse
    | FlagsResponse
    | ListResponse
    | StatusData
    | SearchResponse
    | ESearchResponse
    | VanishedResponse
    | IdResponse
    | NamespaceResponse
    | FetchResponse
    | UnknownResponse
)
