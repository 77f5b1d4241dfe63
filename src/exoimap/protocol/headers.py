"""A message's header as IMAP stores and servers read it: the header block, its fields
(unfolded, names matched case-insensitively) and the Message-ID.

Every store and the sandbox read Message-IDs here, because re-matching messages after a
UIDVALIDITY change compares the Message-IDs that different stores saw for the same bytes:
one rule, applied the same way whether the message arrives whole or in chunks.

The rule for a Message-ID (:func:`normalize_message_id`):

* only the first :data:`HEADER_SCAN_LIMIT` bytes of a message are read (stores sniff the
  header from the first chunk of a stream); a field cut by that limit ends there;
* the header block ends at the first empty line (CRLF or bare LF line ends);
* the first ``Message-ID`` field counts, whatever the case of its name and with optional
  blanks before the colon; folded lines are unfolded;
* comments in parentheses outside the angle brackets are dropped; the id is what lies
  between the first ``<`` and the next ``>`` (or the end), with all whitespace removed, and
  it is returned in angle brackets: ``<id-left@id-right>``. A value without brackets is
  bracketed the same way. An empty result is ``None``.

One view cannot follow the limit: a remote store's listing asks the server for the field
alone (``BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]``), which does not say where in the header
it stood, so for a message whose Message-ID starts past the first 64 KiB that listing sees
the id where every other view sees none.

>>> parse_message_id(b"From: a\\r\\nmessage-id:\\r\\n  < x@y > (sent)\\r\\n\\r\\nbody")
'<x@y>'
>>> normalize_message_id("(comment) abc@example.com")
'<abc@example.com>'
"""

from __future__ import annotations

import re

__all__ = [
    "HEADER_SCAN_LIMIT",
    "HeaderCollector",
    "header_block",
    "header_end",
    "header_field",
    "header_fields",
    "normalize_message_id",
    "parse_message_id",
    "split_header",
]

#: How much of a message's beginning is read for its Message-ID.
HEADER_SCAN_LIMIT = 64 * 1024

# A line break followed by a blank: folding (RFC 5322 section 2.2.3).
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_FIELD_LINE = re.compile(rb"([^:\s][^:\r\n]*?)[ \t]*:(.*)")
_WHITESPACE = re.compile(r"\s+")


def header_end(data: bytes | bytearray, start: int = 0) -> int:
    """The index just after the empty line that ends the header (an empty line at the
    very start, or a line end followed by an optional CR and LF), searching from
    ``start``; -1 when there is none. Plain ``find`` calls: a regex for this steps through
    the whole first 64 KiB of every message of a backup in Python's engine."""
    if start == 0:
        if data[:1] == b"\n":
            return 1
        if data[:2] == b"\r\n":
            return 2
    crlf = data.find(b"\n\r\n", start)
    lf = data.find(b"\n\n", start, len(data) if crlf < 0 else crlf + 1)
    if lf >= 0:
        return lf + 2
    return crlf + 3 if crlf >= 0 else -1


def split_header(data: bytes) -> tuple[bytes, bytes]:
    """``(header, body)``: the header includes the empty line that ends it; a message
    without an empty line is all header."""
    end = header_end(data)
    if end < 0:
        return data, b""
    return data[:end], data[end:]


def header_block(data: bytes) -> bytes:
    """The header block within the first :data:`HEADER_SCAN_LIMIT` bytes of ``data``."""
    return split_header(data[:HEADER_SCAN_LIMIT])[0]


def header_fields(header: bytes) -> list[tuple[str, str]]:
    """The fields of a header block as ``(name, value)`` in order: unfolded, the value
    without surrounding whitespace, both decoded as UTF-8 (bad bytes replaced). Lines that
    are not fields are skipped."""
    out: list[tuple[str, str]] = []
    for line in _FOLD.sub(b"", header).split(b"\n"):
        m = _FIELD_LINE.fullmatch(line.rstrip(b"\r"))
        if m is not None:
            name, value = m.groups()
            out.append((name.decode("utf-8", "replace"), value.decode("utf-8", "replace").strip()))
    return out


def header_field(header: bytes, name: str) -> str | None:
    """The value of the first field called ``name`` (any case) in a header block, or
    ``None`` when there is none (the same answer as searching :func:`header_fields`).

    Plain ``find`` calls on a lower-case copy, not a case-insensitive regex or a split of
    every field: a backup reads the Message-ID of every message. A line that starts a
    field cannot be a continuation (those start with a blank)."""
    needle = b"\n" + name.lower().encode("ascii")
    lower = b"\n" + header.lower()  # so that a field on the first line is found alike
    found = lower.find(needle)
    while found >= 0:
        after_name = found + len(needle) - 1  # index in ``header``
        while header[after_name : after_name + 1] in (b" ", b"\t"):
            after_name += 1
        if header[after_name : after_name + 1] == b":":
            return _field_value(header, after_name + 1)
        found = lower.find(needle, found + 1)
    return None


def _field_value(header: bytes, start: int) -> str:
    """The value from ``start`` to the end of its line and of the folded lines after it,
    unfolded and stripped."""
    end = header.find(b"\n", start)
    while end >= 0 and header[end + 1 : end + 2] in (b" ", b"\t"):
        end = header.find(b"\n", end + 1)
    value = header[start:] if end < 0 else header[start:end]
    return _FOLD.sub(b"", value).decode("utf-8", "replace").strip()


def _without_comments(text: str) -> str:
    """``text`` before its first ``<`` outside comments, with comments removed, followed
    by the rest unchanged (comments nest and ``\\`` quotes the next character)."""
    kept: list[str] = []
    depth = 0
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif depth:
            if ch == "\\":
                escaped = True
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
        elif ch == "(":
            depth = 1
        elif ch == "<":
            return "".join(kept) + text[i:]
        else:
            kept.append(ch)
    return "".join(kept)


def normalize_message_id(value: str | None) -> str | None:
    """A Message-ID field value in its one canonical form (see the module docstring)."""
    if value is None:
        return None
    text = _without_comments(value) if "(" in value else value
    start = text.find("<")
    if start >= 0:
        end = text.find(">", start)
        text = text[start + 1 : end if end >= 0 else len(text)]
    ident = _WHITESPACE.sub("", text)
    return f"<{ident}>" if ident else None


def parse_message_id(data: bytes) -> str | None:
    """The normalised Message-ID of a message, from its first bytes (the whole message
    or any prefix of at least :data:`HEADER_SCAN_LIMIT` bytes give the same answer)."""
    return normalize_message_id(header_field(header_block(data), "Message-ID"))


class HeaderCollector:
    """Keeps a streamed message's header while its chunks pass by, so that the header
    (and the Message-ID) is known without holding the message: feed chunks until
    ``complete``; memory stays under :data:`HEADER_SCAN_LIMIT`.

    >>> collector = HeaderCollector()
    >>> for chunk in (b"Message-ID: <a", b"@b>\\r", b"\\n\\r\\nbody"):
    ...     collector.feed(chunk)
    >>> collector.complete, collector.message_id()
    (True, '<a@b>')
    """

    __slots__ = ("_data", "_header", "complete")

    def __init__(self) -> None:
        self._data = bytearray()
        #: The header, when it ended in the first chunk (kept as is, no copy of the body).
        self._header: bytes | None = None
        #: Whether more chunks can no longer change the header (it ended, or the limit).
        self.complete = False

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        if self.complete:
            return
        data = self._data
        piece = chunk[: HEADER_SCAN_LIMIT - len(data)]
        if not data and not isinstance(piece, memoryview):
            # the usual case, a header ending in the first chunk: keep it without the body
            end = header_end(piece)
            if end >= 0:
                self._header = bytes(piece[:end])
                self.complete = True
                return
        searched_to = max(0, len(data) - 2)  # an empty line may straddle chunks
        data += piece
        self.complete = len(data) >= HEADER_SCAN_LIMIT or header_end(data, searched_to) >= 0

    def header(self) -> bytes:
        """The header block seen so far (all of it once ``complete``)."""
        if self._header is not None:
            return self._header
        return header_block(bytes(self._data))

    def message_id(self) -> str | None:
        return normalize_message_id(header_field(self.header(), "Message-ID"))
