"""Split a byte stream into IMAP lines and literals, with hard caps, before any parsing.

The framer owns the receive buffer. It finds line ends with ``bytearray.find`` on bytes not
searched before (never re-scanning, never a regex over the buffer), consumes from the front
(CPython makes ``del buf[:n]`` O(1)), refuses lines longer than ``max_line_length`` and
literals larger than ``max_literal_size``, and can hand a literal out as chunks without ever
holding it whole. While a streamed literal is pending and the buffer is empty, incoming
``bytes`` are handed out as zero-copy ``memoryview`` slices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from exoimap.errors import RemoteProtocolError

__all__ = ["Framer", "LiteralMarker", "literal_marker", "split_message"]


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
    if not digits.isdigit() or len(digits) > 12:
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
    """The receive buffer, cut into lines and literals under hard size caps.

    Received pieces wait in a list until a line end or enough literal bytes have arrived,
    then are joined once into ``_data`` (immutable ``bytes``) read at offset ``_pos``. So no
    byte is copied more than once on its way to a line, and streamed literal chunks are
    zero-copy ``memoryview`` slices of received ``bytes``.
    """

    __slots__ = (
        "_data",
        "_max_line",
        "_max_literal",
        "_pending",
        "_pending_len",
        "_pos",
        "_scan_from",
        "_unclaimed",
    )

    def __init__(self, *, max_line_length: int, max_literal_size: int) -> None:
        self._data = b""
        self._pos = 0
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._scan_from = 0  # absolute offset in _data where the line-end search resumes
        self._max_line = max_line_length
        self._max_literal = max_literal_size
        self._unclaimed = 0  # bytes of the streamed literal not yet handed out

    @property
    def max_literal_size(self) -> int:
        return self._max_literal

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, bytes):
            data = bytes(data)
        self._pending.append(data)
        self._pending_len += len(data)

    def buffered(self) -> int:
        """Bytes received but not yet consumed."""
        return len(self._data) - self._pos + self._pending_len

    def _join(self) -> None:
        rest = len(self._data) - self._pos
        pending = self._pending
        if not rest and len(pending) == 1:
            self._data = pending[0]
        else:
            self._data = self._data[self._pos :] + b"".join(pending)
        self._scan_from = max(0, self._scan_from - self._pos)
        self._pos = 0
        self._pending = []
        self._pending_len = 0

    def read_line(self) -> bytes | None:
        """The next line without its CRLF, or None until a CRLF arrives.

        Raises :class:`RemoteProtocolError` once the line is longer than the cap.
        """
        data, pos = self._data, self._pos
        end = data.find(b"\r\n", max(pos, self._scan_from))
        if end < 0:
            # Join the waiting pieces only once one of them can end the line.
            if self._pending and any(b"\n" in piece for piece in self._pending):
                self._scan_from = max(pos, len(data) - 1)
                self._join()
                data, pos = self._data, 0
                end = data.find(b"\r\n", self._scan_from)
            if end < 0:
                if len(data) - pos + self._pending_len > self._max_line:
                    raise RemoteProtocolError(
                        f"line longer than {self._max_line} bytes (the configured maximum)"
                    )
                self._scan_from = max(pos, len(data) - 1)
                return None
        if end - pos > self._max_line:
            raise RemoteProtocolError(
                f"line longer than {self._max_line} bytes (the configured maximum)"
            )
        self._pos = end + 2
        return data[pos:end]

    def match_lines(self, pattern: re.Pattern[bytes], limit: int) -> list[re.Match[bytes]]:
        """Consume up to ``limit`` complete lines that ``pattern`` matches entirely, stopping
        at the first that it does not (each line is searched once, in place, unsliced)."""
        data, pos = self._data, self._pos
        find, fullmatch, max_line = data.find, pattern.fullmatch, self._max_line
        matches: list[re.Match[bytes]] = []
        while len(matches) < limit:
            end = find(b"\r\n", pos)
            if end < 0 or end - pos > max_line:
                break
            m = fullmatch(data, pos, end)
            if m is None:
                break
            matches.append(m)
            pos = end + 2
        self._pos = pos
        return matches

    def rewind(self, pos: int) -> None:
        """Give back the lines from ``pos`` (a match start from :meth:`match_lines`)."""
        self._pos = pos

    def check_literal(self, size: int) -> None:
        if size > self._max_literal:
            raise RemoteProtocolError(
                f"literal of {size} bytes exceeds the configured maximum of {self._max_literal}"
            )

    def read_exact(self, size: int) -> bytes | None:
        """``size`` bytes (a buffered literal), or None until they have all arrived."""
        if len(self._data) - self._pos < size:
            if len(self._data) - self._pos + self._pending_len < size:
                return None
            self._join()
        pos = self._pos
        self._pos = pos + size
        return self._data[pos : pos + size]

    def start_stream(self, size: int) -> None:
        """Begin handing out the next ``size`` bytes as chunks (see :meth:`read_chunk`)."""
        self._unclaimed = size

    def stream_remaining(self) -> int:
        return self._unclaimed

    def read_chunk(self) -> bytes | memoryview | None:
        """The next piece of the streamed literal (zero-copy where possible), or None if
        none is available yet. Returns ``b""`` once the literal is complete."""
        want = self._unclaimed
        if not want:
            return b""
        avail = len(self._data) - self._pos
        if not avail:
            if not self._pending:
                return None
            head = self._pending[0]
            if len(head) <= want:
                # A received piece that lies wholly inside the literal: hand it out as is.
                self._pending.pop(0)
                self._pending_len -= len(head)
                self._unclaimed = want - len(head)
                return head
            self._data, self._pos, self._scan_from = head, 0, 0
            self._pending.pop(0)
            self._pending_len -= len(head)
            avail = len(head)
        take = min(avail, want)
        pos = self._pos
        self._pos = pos + take
        self._unclaimed = want - take
        if take == len(self._data):
            return self._data
        return memoryview(self._data)[pos : pos + take]
