"""A token reader over one framed IMAP message (line parts plus the literals between them).

A message is ``parts[0] literal[0] parts[1] literal[1] ... parts[-1]``: each part but the
last ends with a literal marker (``{n}``, ``{n+}``, ``~{n}``), and ``literals[i]`` is the
literal after ``parts[i]`` (None when it was streamed to a consumer instead of kept).
Regexes are only ever matched at a position inside one short line part.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from exoimap.errors import RemoteProtocolError
from exoimap.protocol.framing import literal_marker
from exoimap.protocol.types import Value

__all__ = ["MAX_DEPTH", "Reader", "StreamedLiteral", "dec"]

#: Deepest nesting of parentheses accepted (a hostile peer must not exhaust the stack).
MAX_DEPTH = 64

ATOM_RE = re.compile(rb'[^\x00-\x20\x7f(){%*"\\\]]+')
ASTRING_RE = re.compile(rb'[^\x00-\x20\x7f(){%*"\\]+')
# Mailbox names as servers really send them: Exchange leaves control characters unquoted.
LOOSE_NAME_RE = re.compile(rb'[^ \r\n(){"]+')
FLAG_RE = re.compile(rb'\\?[^\x00-\x20\x7f(){%*"\\\]]+|\\\*')
NUMBER_RE = re.compile(rb"\d{1,20}")
SEQUENCE_SET_RE = re.compile(rb"[0-9*:,]+")
QUOTED_RE = re.compile(rb'"((?:[^"\\\r\n]|\\[^\r\n])*)"')
UNESCAPE_RE = re.compile(rb"\\(.)")
VALUE_ATOM_RE = re.compile(rb'[^\x00-\x20\x7f()"{]+')


def dec(raw: bytes) -> str:
    """Bytes to str losslessly (UTF-8, other bytes kept as surrogate escapes)."""
    return raw.decode("utf-8", "surrogateescape")


class StreamedLiteral:
    """Stands for a literal that was handed to the consumer as chunks."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


class Reader:
    __slots__ = (
        "_marker_at",
        "_marker_idx",
        "idx",
        "line",
        "literals",
        "parts",
        "pos",
        "quote_input",
    )

    def __init__(
        self,
        parts: list[bytes],
        literals: Sequence[bytes | StreamedLiteral],
        *,
        quote_input: bool = True,
    ) -> None:
        #: Whether error messages quote the input around the error. Off for client commands,
        #: which may carry passwords and tokens.
        self.quote_input = quote_input
        self.parts = parts
        self.literals = literals
        self.idx = 0
        self.line = parts[0]
        self.pos = 0
        self._marker_idx = -1
        self._marker_at = -1

    # --- errors and position -------------------------------------------------------------

    def error(self, what: str) -> RemoteProtocolError:
        if not self.quote_input:
            return RemoteProtocolError(f"{what} at byte {self.pos}")
        snippet = self.line[max(0, self.pos - 20) : self.pos + 40]
        return RemoteProtocolError(f"{what} at byte {self.pos}: {snippet!r}")

    def at_line_end(self) -> bool:
        return self.pos >= len(self.line)

    def at_end(self) -> bool:
        return self.pos >= len(self.line) and self.idx == len(self.parts) - 1

    def is_last_part(self) -> bool:
        return self.idx >= len(self.parts) - 1

    def peek(self) -> int:
        """The next byte, or -1 at the end of the line part."""
        if self.pos < len(self.line):
            return self.line[self.pos]
        return -1

    def maybe(self, token: bytes) -> bool:
        if self.line.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def maybe_word(self, word: bytes) -> bool:
        """Skip ``word`` (given in upper case) if it comes next, in any case."""
        end = self.pos + len(word)
        if self.line[self.pos : end].upper() != word:
            return False
        self.pos = end
        return True

    def expect(self, token: bytes) -> None:
        if not self.line.startswith(token, self.pos):
            raise self.error(f"expected {token!r}")
        self.pos += len(token)

    def sp(self) -> None:
        if self.pos < len(self.line) and self.line[self.pos] == 0x20:
            self.pos += 1
        else:
            raise self.error("expected a space")

    def skip_spaces(self) -> None:
        line = self.line
        while self.pos < len(line) and line[self.pos] == 0x20:
            self.pos += 1

    def end(self) -> None:
        """Require the end of the message (tolerating trailing spaces)."""
        self.skip_spaces()
        if not self.at_end():
            raise self.error("unexpected data")

    def rest(self) -> bytes:
        """The rest of the current line part."""
        data = self.line[self.pos :]
        self.pos = len(self.line)
        return data

    # --- tokens --------------------------------------------------------------------------

    def _match(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        m = pattern.match(self.line, self.pos)
        if m is None:
            raise self.error(f"expected {what}")
        self.pos = m.end()
        return m.group()

    def atom(self) -> bytes:
        return self._match(ATOM_RE, "an atom")

    def flag(self) -> bytes:
        return self._match(FLAG_RE, "a flag")

    def sequence_set_text(self) -> str:
        return self._match(SEQUENCE_SET_RE, "a sequence set").decode("ascii")

    def number(self) -> int:
        return int(self._match(NUMBER_RE, "a number"))

    def nz_number(self) -> int:
        n = self.number()
        if n == 0:
            raise self.error("expected a non-zero number")
        return n

    def quoted(self) -> bytes:
        m = QUOTED_RE.match(self.line, self.pos)
        if m is None:
            raise self.error("expected a quoted string")
        self.pos = m.end()
        raw = m.group(1)
        if b"\\" in raw:
            return UNESCAPE_RE.sub(rb"\1", raw)
        return raw

    def _marker_start(self) -> int:
        """Where the current part's literal marker starts (-1 if no literal follows it)."""
        if self._marker_idx != self.idx:
            marker = None if self.is_last_part() else literal_marker(self.line)
            self._marker_at = -1 if marker is None else marker.start
            self._marker_idx = self.idx
        return self._marker_at

    def at_literal(self) -> bool:
        c = self.peek()
        if c not in (0x7B, 0x7E):  # "{", "~"
            return False
        return self._marker_start() == self.pos

    def literal(self) -> bytes | StreamedLiteral:
        if self._marker_start() != self.pos:
            raise self.error("expected a literal")
        data = self.literals[self.idx]
        self.idx += 1
        self.line = self.parts[self.idx]
        self.pos = 0
        return data

    def literal_bytes(self) -> bytes:
        data = self.literal()
        if isinstance(data, StreamedLiteral):
            raise self.error("a streamed literal where a value was needed")
        return data

    def string(self) -> bytes:
        if self.peek() == 0x22:
            return self.quoted()
        return self.literal_bytes()

    def astring(self) -> bytes:
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c in (0x7B, 0x7E) and self.at_literal():
            return self.literal_bytes()
        return self._match(ASTRING_RE, "an atom or string")

    def mailbox(self) -> bytes:
        """A mailbox name, tolerating Exchange's unquoted control characters."""
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c in (0x7B, 0x7E) and self.at_literal():
            return self.literal_bytes()
        return self._match(LOOSE_NAME_RE, "a mailbox name")

    def nstring(self) -> bytes | None:
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c in (0x7B, 0x7E) and self.at_literal():
            return self.literal_bytes()
        if self.line.startswith((b"NIL", b"nil", b"Nil"), self.pos):
            self.pos += 3
            return None
        raise self.error("expected a string or NIL")

    def is_nil(self) -> bool:
        if self.line[self.pos : self.pos + 3].upper() == b"NIL":
            self.pos += 3
            return True
        return False

    def flag_list(self) -> tuple[str, ...]:
        self.expect(b"(")
        flags: list[str] = []
        while True:
            self.skip_spaces()
            if self.maybe(b")"):
                return tuple(flags)
            flags.append(dec(self.flag()))

    def value(self, depth: int = 0) -> Value:
        """A generic value: NIL, number, string, atom or parenthesised list."""
        c = self.peek()
        if c == 0x28:  # "("
            if depth >= MAX_DEPTH:
                raise self.error("parentheses nested too deeply")
            self.pos += 1
            items: list[Value] = []
            while True:
                self.skip_spaces()
                if self.maybe(b")"):
                    return tuple(items)
                items.append(self.value(depth + 1))
        if c == 0x22:
            return self.quoted()
        if c in (0x7B, 0x7E) and self.at_literal():
            return self.literal_bytes()
        token = self._match(VALUE_ATOM_RE, "a value")
        if token.isdigit() and len(token) <= 20:
            return int(token)
        if token.upper() == b"NIL":
            return None
        return token
