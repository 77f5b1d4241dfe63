"""Split a byte stream into IMAP lines and literals, with hard caps, before any parsing.

The framer owns the receive buffer. It finds line ends with ``bytearray.find`` on bytes not
searched before (never re-scanning, never a regex over the buffer), consumes from the front
(CPython makes ``del buf[:n]`` O(1)), refuses lines longer than ``max_line_length`` and
literals larger than ``max_literal_size``, and can hand a literal out as chunks without ever
holding it whole. While a streamed literal is pending and the buffer is empty, incoming
``bytes`` are handed out as zero-copy ``memoryview`` slices.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from exoimap.errors import RemoteProtocolError

__all__ = ["Framer", "LiteralMarker", "literal_marker", "split_message"]

_DIGITS = frozenset(b"0123456789")


@dataclass(frozen=True, slots=True)
class LiteralMarker:
    """The ``{n}``, ``{n+}`` or ``~{n}`` that ends a line part."""

    size: int
    synchronizing: bool
    binary: bool
    #: Offset of the marker (the ``{`` or the ``~``) in the line.
    start: int


def literal_marker(line: bytes) -> LiteralMarker | None:
    """The literal announced at the end of ``line`` (without CRLF), if any."""
    if not line.endswith(b"}"):
        return None
    open_at = line.rfind(b"{")
    if open_at < 0:
        return None
    end = len(line) - 1
    synchronizing = True
    if line[end - 1 : end] == b"+":
        synchronizing = False
        end -= 1
    digits = line[open_at + 1 : end]
    if not digits or len(digits) > 12 or not all(c in _DIGITS for c in digits):
        return None
    binary = open_at > 0 and line[open_at - 1] == 0x7E  # "~"
    start = open_at - 1 if binary else open_at
    return LiteralMarker(int(digits), synchronizing, binary, start)


def split_message(data: bytes) -> tuple[list[bytes], list[bytes]]:
    """Cut one complete message (literals inline, optional final CRLF) into line parts and
    literals, for parsing whole messages in tests and tools."""
    parts: list[bytes] = []
    literals: list[bytes] = []
    rest = data[:-2] if data.endswith(b"\r\n") else data
    while True:
        end = rest.find(b"\r\n")
        line = rest if end < 0 else rest[:end]
        marker = literal_marker(line) if end >= 0 else None
        parts.append(line)
        if marker is None:
            if end >= 0:
                raise RemoteProtocolError("more than one line in a message")
            return parts, literals
        start = end + 2
        literal = rest[start : start + marker.size]
        if len(literal) < marker.size:
            raise RemoteProtocolError("a literal is cut short")
        literals.append(literal)
        rest = rest[start + marker.size :]


class Framer:
    """The receive buffer, cut into lines and literals under hard size caps."""

    __slots__ = ("_buf", "_direct", "_max_line", "_max_literal", "_scan_from", "_unclaimed")

    def __init__(self, *, max_line_length: int, max_literal_size: int) -> None:
        self._buf = bytearray()
        self._scan_from = 0
        self._max_line = max_line_length
        self._max_literal = max_literal_size
        # Streamed literal: bytes not yet taken from the input, and zero-copy slices of
        # input that arrived while the buffer was empty.
        self._unclaimed = 0
        self._direct: deque[bytes | memoryview] = deque()

    @property
    def max_literal_size(self) -> int:
        return self._max_literal

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._unclaimed and not self._buf:
            if not isinstance(data, bytes):
                data = bytes(data)
            take = min(len(data), self._unclaimed)
            if take == len(data):
                self._direct.append(data)
            else:
                self._direct.append(memoryview(data)[:take])
            self._unclaimed -= take
            if take < len(data):
                self._buf += memoryview(data)[take:]
            return
        self._buf += data

    def buffered(self) -> int:
        """Bytes received but not yet consumed."""
        return len(self._buf) + sum(len(c) for c in self._direct)

    def read_line(self) -> bytes | None:
        """The next line without its CRLF, or None until a CRLF arrives.

        Raises :class:`RemoteProtocolError` once the line is longer than the cap.
        """
        buf = self._buf
        end = buf.find(b"\r\n", self._scan_from)
        if end < 0:
            if len(buf) > self._max_line:
                raise RemoteProtocolError(
                    f"line longer than {self._max_line} bytes (the configured maximum)"
                )
            self._scan_from = max(0, len(buf) - 1)
            return None
        if end > self._max_line:
            raise RemoteProtocolError(
                f"line longer than {self._max_line} bytes (the configured maximum)"
            )
        line = bytes(buf[:end])
        del buf[: end + 2]
        self._scan_from = 0
        return line

    def check_literal(self, size: int) -> None:
        if size > self._max_literal:
            raise RemoteProtocolError(
                f"literal of {size} bytes exceeds the configured maximum of {self._max_literal}"
            )

    def read_exact(self, size: int) -> bytes | None:
        """``size`` bytes (a buffered literal), or None until they have all arrived."""
        buf = self._buf
        if len(buf) < size:
            return None
        data = bytes(buf[:size])
        del buf[:size]
        self._scan_from = 0
        return data

    def start_stream(self, size: int) -> None:
        """Begin handing out the next ``size`` bytes as chunks (see :meth:`read_chunk`)."""
        self._unclaimed = size

    def stream_remaining(self) -> int:
        return self._unclaimed + sum(len(c) for c in self._direct)

    def read_chunk(self) -> bytes | memoryview | None:
        """The next piece of the streamed literal, or None if none is available yet.

        Returns ``b""`` once the literal is complete.
        """
        if self._direct:
            return self._direct.popleft()
        if not self._unclaimed:
            return b""
        buf = self._buf
        if not buf:
            return None
        take = min(len(buf), self._unclaimed)
        data = bytes(buf[:take])
        del buf[:take]
        self._unclaimed -= take
        self._scan_from = 0
        return data
