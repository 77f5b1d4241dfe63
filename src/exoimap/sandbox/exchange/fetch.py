"""FETCH responses of the sandbox server, rendered to exact bytes.

Items: UID, FLAGS, INTERNALDATE, RFC822.SIZE (exact, or Exchange's estimate when the quirk
is on), ENVELOPE, BODY, BODYSTRUCTURE, RFC822, RFC822.HEADER, RFC822.TEXT, and
``BODY[section]<partial>`` / ``BODY.PEEK[...]`` with HEADER, HEADER.FIELDS[.NOT], TEXT,
MIME and part numbers; the macros ALL, FAST and FULL.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from exoimap.errors import RemoteProtocolError
from exoimap.protocol.commands import FetchItem
from exoimap.protocol.dates import format_date_time
from exoimap.sandbox.exchange.mime import Part, header_params, nstring, parse_message, quote

__all__ = [
    "FetchRequest",
    "MessageView",
    "expand_items",
    "render_fetch",
    "render_fetch_pieces",
]

_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_SIMPLE = {
    "UID",
    "FLAGS",
    "INTERNALDATE",
    "RFC822.SIZE",
    "ENVELOPE",
    "BODY",
    "BODYSTRUCTURE",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
}
_SECTION = re.compile(
    r"^((?:\d+\.)*\d+)?\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?\s*(\(.*\))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """One body item: section text as sent, peek, optional ``(start, length)``."""

    section: str
    peek: bool
    partial: tuple[int, int] | None


@dataclass(slots=True)
class MessageView:
    uid: int
    seq: int
    flags: frozenset[str]
    internal_date: _dt.datetime
    data: bytes


def expand_items(items: Sequence[FetchItem]) -> list[str | FetchRequest]:
    """Normalise the protocol core's fetch items; raises RemoteProtocolError when unknown."""
    out: list[str | FetchRequest] = []
    for item in items:
        if isinstance(item, str):
            name = item.upper()
            if name in _MACROS:
                out.extend(_MACROS[name])
            elif name in _SIMPLE:
                out.append(name)
            else:
                raise RemoteProtocolError(f"unsupported FETCH item {item!r}")
            continue
        if item.binary:  # BINARY is not advertised by Exchange
            raise RemoteProtocolError("unsupported FETCH item BINARY")
        section = item.section.strip()
        if not _SECTION.match(section):
            raise RemoteProtocolError(f"invalid section {section!r}")
        out.append(FetchRequest(section, item.peek, item.partial))
    return out


def estimated_size(size: int) -> int:
    """1.7 quirk: an RFC822.SIZE that is close to, but not, the real size."""
    return size + size // 50 + 7


def _flags(flags: frozenset[str]) -> bytes:
    return b"(" + " ".join(sorted(flags)).encode("ascii") + b")"


# --- ENVELOPE -----------------------------------------------------------------------------


def _split_addresses(value: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in value:
        if char == '"' and (not current or current[-1] != "\\"):
            quoted = not quoted
        elif not quoted and char == "<":
            depth += 1
        elif not quoted and char == ">":
            depth -= 1
        if char == "," and not quoted and depth == 0:
            out.append("".join(current))
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        out.append("".join(current))
    return [a.strip() for a in out if a.strip()]


def _address_list(value: str | None) -> bytes:
    if not value:
        return b"NIL"
    items = []
    for text in _split_addresses(value):
        name: str | None = None
        if "<" in text and text.endswith(">"):
            name_part, _, addr = text[:-1].rpartition("<")
            name = name_part.strip().strip('"') or None
        else:
            addr = text
        mailbox, _, host = addr.strip().partition("@")
        items.append(
            b"("
            + nstring(name)
            + b" NIL "
            + nstring(mailbox or None)
            + b" "
            + nstring(host or None)
            + b")"
        )
    return b"(" + b"".join(items) + b")" if items else b"NIL"


def envelope(part: Part) -> bytes:
    sender = part.get("From")
    fields = [
        nstring(part.get("Date")),
        nstring(part.get("Subject")),
        _address_list(sender),
        _address_list(part.get("Sender") or sender),
        _address_list(part.get("Reply-To") or sender),
        _address_list(part.get("To")),
        _address_list(part.get("Cc")),
        _address_list(part.get("Bcc")),
        nstring(part.get("In-Reply-To")),
        nstring(part.get("Message-ID")),
    ]
    return b"(" + b" ".join(fields) + b")"


# --- BODYSTRUCTURE ------------------------------------------------------------------------


def _params(params: list[tuple[str, str]]) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(quote(k.upper()) + b" " + quote(v) for k, v in params) + b")"


def _disposition(part: Part) -> bytes:
    value = part.get("Content-Disposition")
    if not value:
        return b"NIL"
    kind, _, rest = value.partition(";")
    return b"(" + quote(kind.strip().lower()) + b" " + _params(header_params(rest)) + b")"


def body_structure(part: Part, *, extended: bool) -> bytes:
    if part.is_multipart:
        inner = b"".join(body_structure(child, extended=extended) for child in part.children)
        out = inner + b" " + quote(part.subtype.upper())
        if extended:
            out += b" " + _params(part.params) + b" " + _disposition(part) + b" NIL NIL"
        return b"(" + out + b")"
    encoding = (part.get("Content-Transfer-Encoding") or "7BIT").upper()
    fields = [
        quote(part.maintype.upper()),
        quote(part.subtype.upper()),
        _params(part.params),
        nstring(part.get("Content-ID")),
        nstring(part.get("Content-Description")),
        quote(encoding),
        str(len(part.body)).encode(),
    ]
    if part.message is not None:
        fields.append(envelope(part.message))
        fields.append(body_structure(part.message, extended=extended))
        fields.append(str(part.body.count(b"\n")).encode())
    elif part.maintype == "text":
        fields.append(str(part.body.count(b"\n")).encode())
    if extended:
        fields += [b"NIL", _disposition(part), b"NIL", b"NIL"]
    return b"(" + b" ".join(fields) + b")"


# --- sections -----------------------------------------------------------------------------


def _find_part(root: Part, numbers: list[int]) -> Part:
    part = root
    for number in numbers:
        if part.message is not None and not part.is_multipart:
            part = part.message
        if part.is_multipart:
            if not 1 <= number <= len(part.children):
                raise LookupError(number)
            part = part.children[number - 1]
        elif number != 1:
            raise LookupError(number)
    return part


def _header_fields(header: bytes, names: list[str], *, exclude: bool) -> bytes:
    wanted = {n.lower() for n in names}
    lines = header.split(b"\r\n") if b"\r\n" in header else header.split(b"\n")
    out: list[bytes] = []
    keep = False
    for line in lines:
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        keep = (name in wanted) != exclude
        if keep:
            out.append(line)
    return b"".join(line + b"\r\n" for line in out) + b"\r\n"


def section_bytes(root: Part, data: bytes, section: str) -> bytes:
    """The bytes of ``BODY[section]`` (empty when the part does not exist)."""
    match = _SECTION.match(section)
    if match is None:
        raise RemoteProtocolError(f"invalid section {section!r}")
    numbers_text, kind, fields_text = match.groups()
    kind = (kind or "").upper()
    if not numbers_text and not kind:
        return data
    try:
        part = _find_part(root, [int(n) for n in numbers_text.split(".")] if numbers_text else [])
    except LookupError:
        return b""
    if numbers_text and kind in ("HEADER", "TEXT", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        if part.message is None:
            return b""
        part = part.message
    if not kind:
        return part.body
    if kind == "MIME":
        return part.header
    if kind == "HEADER":
        return part.header
    if kind == "TEXT":
        return part.body
    names = (fields_text or "()").strip("()").replace('"', "").split()
    return _header_fields(part.header, names, exclude=kind.endswith(".NOT"))


def render_fetch(
    message: MessageView,
    items: Sequence[str | FetchRequest],
    *,
    uid_first: bool,
    estimate_size: bool,
) -> bytes:
    """``* seq FETCH (...)`` CRLF for one message."""
    return b"".join(
        render_fetch_pieces(message, items, uid_first=uid_first, estimate_size=estimate_size)
    )


# A response item: its bytes, or a literal as (its text up to and with ``{n}`` CRLF, its bytes)
# so that message bodies are queued as they are, not copied into the response.
_Entry = bytes | tuple[bytes, bytes]


class _ItemRenderer:
    """Renders the items of one message; the MIME tree is parsed once, and only for the
    items that need it (BODY[] and RFC822 alone never do)."""

    __slots__ = ("_estimate_size", "_message", "_root")

    def __init__(self, message: MessageView, estimate_size: bool) -> None:
        self._message = message
        self._estimate_size = estimate_size
        self._root: Part | None = None

    def _parsed(self) -> Part:
        if self._root is None:
            self._root = parse_message(self._message.data)
        return self._root

    def body_section(self, request: FetchRequest) -> _Entry:
        if not request.section:
            body = self._message.data  # BODY[]: no need to split the MIME tree
        else:
            body = section_bytes(self._parsed(), self._message.data, request.section)
        origin = ""
        if request.partial is not None:
            start, length = request.partial
            body = body[start : start + length]
            origin = f"<{start}>"
        return _literal(f"BODY[{request.section}]{origin}".encode(), body)

    def flags(self) -> _Entry:
        return b"FLAGS " + _flags(self._message.flags)

    def internal_date(self) -> _Entry:
        return b'INTERNALDATE "' + format_date_time(self._message.internal_date).encode() + b'"'

    def size(self) -> _Entry:
        size = len(self._message.data)
        return b"RFC822.SIZE %d" % (estimated_size(size) if self._estimate_size else size)

    def envelope(self) -> _Entry:
        return b"ENVELOPE " + envelope(self._parsed())

    def body(self) -> _Entry:
        return b"BODY " + body_structure(self._parsed(), extended=False)

    def body_structure(self) -> _Entry:
        return b"BODYSTRUCTURE " + body_structure(self._parsed(), extended=True)

    def rfc822(self) -> _Entry:
        return _literal(b"RFC822", self._message.data)

    def rfc822_header(self) -> _Entry:
        return _literal(b"RFC822.HEADER", self._parsed().header)

    def rfc822_text(self) -> _Entry:
        return _literal(b"RFC822.TEXT", self._parsed().body)


def _literal(name: bytes, data: bytes) -> _Entry:
    return (name + b" {%d}\r\n" % len(data), data)


# The named items other than UID (which is written once, wherever it is asked for first).
_NAMED_ITEMS: dict[str, Callable[[_ItemRenderer], _Entry]] = {
    "FLAGS": _ItemRenderer.flags,
    "INTERNALDATE": _ItemRenderer.internal_date,
    "RFC822.SIZE": _ItemRenderer.size,
    "ENVELOPE": _ItemRenderer.envelope,
    "BODY": _ItemRenderer.body,
    "BODYSTRUCTURE": _ItemRenderer.body_structure,
    "RFC822": _ItemRenderer.rfc822,
    "RFC822.HEADER": _ItemRenderer.rfc822_header,
    "RFC822.TEXT": _ItemRenderer.rfc822_text,
}


def render_fetch_pieces(
    message: MessageView,
    items: Sequence[str | FetchRequest],
    *,
    uid_first: bool,
    estimate_size: bool,
) -> list[bytes]:
    """The same as :func:`render_fetch` as pieces: message bodies are not copied."""
    renderer = _ItemRenderer(message, estimate_size)
    entries: list[_Entry] = []
    uid_written = uid_first
    if uid_first:
        entries.append(b"UID %d" % message.uid)
    for item in items:
        if isinstance(item, FetchRequest):
            entries.append(renderer.body_section(item))
        elif item == "UID":
            if not uid_written:
                entries.append(b"UID %d" % message.uid)
                uid_written = True
        else:
            render = _NAMED_ITEMS.get(item)
            if render is not None:
                entries.append(render(renderer))
    return _response_pieces(message.seq, entries)


def _response_pieces(seq: int, entries: list[_Entry]) -> list[bytes]:
    """``* seq FETCH (entries)`` CRLF: the small parts joined, each literal's bytes apart."""
    pieces: list[bytes] = []
    small = bytearray(b"* %d FETCH (" % seq)
    for index, entry in enumerate(entries):
        if index:
            small += b" "
        if isinstance(entry, tuple):
            small += entry[0]
            pieces += (bytes(small), entry[1])
            small = bytearray()
        else:
            small += entry
    small += b")\r\n"
    pieces.append(bytes(small))
    return pieces
