"""A small MIME splitter that keeps byte offsets, for FETCH BODY[section], BODYSTRUCTURE
and ENVELOPE in the sandbox server.

The stdlib ``email`` package re-serialises what it parses, so it cannot hand back the
exact bytes of a part; IMAP sections must be byte-exact slices of the stored message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from exoimap.protocol.headers import header_fields, split_header

__all__ = ["Part", "header_params", "parse_message", "quote", "nstring"]

_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"]*)"|([^\s;]+))', re.IGNORECASE)
_PARAM = re.compile(r';\s*([A-Za-z0-9\-_.*]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')


@dataclass(slots=True)
class Part:
    """One MIME entity: ``header`` (including the blank line) and ``body`` bytes."""

    header: bytes
    body: bytes
    fields: list[tuple[str, str]]
    maintype: str = "text"
    subtype: str = "plain"
    params: list[tuple[str, str]] = field(default_factory=list)
    children: list[Part] = field(default_factory=list)
    #: For message/rfc822: the enclosed message.
    message: Part | None = None

    def get(self, name: str) -> str | None:
        low = name.lower()
        for key, value in self.fields:
            if key.lower() == low:
                return value
        return None

    @property
    def is_multipart(self) -> bool:
        return self.maintype == "multipart"


def header_params(rest: str) -> list[tuple[str, str]]:
    """The ``name=value`` parameters of a header field, from what follows its first ``;``
    (names lower-cased, quoted values unquoted)."""
    params = []
    for name, raw in _PARAM.findall(";" + rest):
        if raw.startswith('"'):
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params.append((name.lower(), raw))
    return params


def _content_type(value: str | None, default: str) -> tuple[str, str, list[tuple[str, str]]]:
    text = value or default
    kind, _, rest = text.partition(";")
    maintype, _, subtype = kind.strip().partition("/")
    if not maintype or not subtype:
        maintype, _, subtype = default.partition("/")
    return maintype.lower(), subtype.lower(), header_params(rest)


def parse_message(data: bytes, default_type: str = "text/plain") -> Part:
    """Split ``data`` into a tree of :class:`Part` (never raises on odd input)."""
    header, body = split_header(data)
    fields = header_fields(header)
    part = Part(header=header, body=body, fields=fields)
    ctype = None
    for key, value in fields:
        if key.lower() == "content-type":
            ctype = value
            break
    part.maintype, part.subtype, part.params = _content_type(ctype, default_type)
    if part.maintype == "multipart":
        match = _BOUNDARY.search(header)
        if match is None:
            part.maintype, part.subtype = "text", "plain"
            return part
        boundary = match.group(1) if match.group(1) is not None else match.group(2)
        child_default = "message/rfc822" if part.subtype == "digest" else "text/plain"
        part.children = [parse_message(p, child_default) for p in _split_parts(body, boundary)]
        if not part.children:
            part.children = [parse_message(b"\r\n")]
    elif (part.maintype, part.subtype) == ("message", "rfc822"):
        part.message = parse_message(body)
    return part


def _split_parts(body: bytes, boundary: bytes) -> list[bytes]:
    delimiter = b"--" + boundary
    parts: list[bytes] = []
    start: int | None = None
    position = 0
    while True:
        index = body.find(delimiter, position)
        if index < 0:
            break
        at_line_start = index == 0 or body[index - 1 : index] == b"\n"
        if not at_line_start:
            position = index + len(delimiter)
            continue
        if start is not None:
            end = index
            if body[end - 2 : end] == b"\r\n":
                end -= 2
            elif body[end - 1 : end] == b"\n":
                end -= 1
            parts.append(body[start:end])
        closing = body[index + len(delimiter) : index + len(delimiter) + 2] == b"--"
        if closing:
            return parts
        line_end = body.find(b"\n", index)
        if line_end < 0:
            return parts
        start = line_end + 1
        position = start
    if start is not None:
        parts.append(body[start:])
    return parts


def quote(text: str | bytes) -> bytes:
    """An IMAP string: quoted when safe, a literal for 8-bit or CR/LF content."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if any(b > 0x7E for b in raw) or b"\r" in raw or b"\n" in raw or b"\x00" in raw:
        return b"{%d}\r\n" % len(raw) + raw
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def nstring(text: str | bytes | None) -> bytes:
    return b"NIL" if text is None else quote(text)
