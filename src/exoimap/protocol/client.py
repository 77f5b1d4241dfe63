"""The client side of an IMAP connection, without I/O.

Feed received bytes to :meth:`ClientConnection.receive_data`, take events from
:meth:`~ClientConnection.next_event` until it returns :data:`NEED_DATA`, queue commands with
:meth:`~ClientConnection.send` (which returns the tag) and write out
:meth:`~ClientConnection.data_to_send`. See the package docstring for an example.
"""

from __future__ import annotations

import base64
import itertools
from collections import deque

from exoimap.errors import LocalProtocolError, RemoteProtocolError
from exoimap.protocol import commands as c
from exoimap.protocol.events import (
    NEED_DATA,
    BodyChunk,
    CommandDone,
    ConnectionClosed,
    FetchEnd,
    FetchStart,
    Greeting,
    NeedData,
)
from exoimap.protocol.framing import Framer, literal_marker
from exoimap.protocol.parse import parse_response
from exoimap.protocol.parse_fetch import (
    FAST_FETCH,
    FetchPrefix,
    fast_fetch,
    fast_fetch_match,
    finish_fetch,
    parse_fetch_prefix,
)
from exoimap.protocol.reader import StreamedLiteral
from exoimap.protocol.serialize import WAIT, Piece
from exoimap.protocol.serialize_command import serialize_command
from exoimap.protocol.types import (
    CapabilityCode,
    CapabilityResponse,
    ContinuationRequest,
    FetchResponse,
    Response,
    Status,
    StatusResponse,
)

__all__ = ["ClientConnection", "ClientEvent"]

ClientEvent = (
    Response
    | Greeting
    | CommandDone
    | FetchStart
    | BodyChunk
    | FetchEnd
    | ConnectionClosed
    | NeedData
)

_LINE, _LITERAL, _STREAM = 0, 1, 2
_HUGE = 1 << 62
_LITERAL_MINUS_MAX = 4096
_BATCH = 256


class ClientConnection:
    """Sans-I/O IMAP client connection: bytes in, events out; commands in, bytes out.

    Caps (all in bytes): ``max_line_length`` for one line, ``max_literal_size`` for any
    literal (streamed or not), ``max_buffered_literal`` for a literal held in memory and
    ``max_response_size`` for one buffered response. Body literals (BODY[...], BINARY[...],
    RFC822...) of at least ``stream_threshold`` bytes arrive as FetchStart / BodyChunk... /
    FetchEnd; ``stream_threshold=None`` buffers them (within ``max_buffered_literal``).
    ``literal_plus``: True/False forces non-synchronising literals on/off; None follows the
    server's CAPABILITY (LITERAL+, LITERAL-).

    After :class:`~exoimap.errors.RemoteProtocolError` the stream cannot be trusted any
    more: close the connection. ``capabilities`` follows the latest CAPABILITY response or
    code; ``bye`` holds the BYE the server sent, if any.
    """

    def __init__(
        self,
        *,
        tag_prefix: str = "A",
        max_line_length: int = 16 << 20,
        max_literal_size: int = 256 << 20,
        max_buffered_literal: int = 16 << 20,
        max_response_size: int = 64 << 20,
        stream_threshold: int | None = 64 << 10,
        literal_plus: bool | None = None,
    ) -> None:
        if not tag_prefix.isalnum() or not tag_prefix.isascii():
            raise LocalProtocolError("the tag prefix must be ASCII letters and digits")
        self._framer = Framer(max_line_length=max_line_length, max_literal_size=max_literal_size)
        self._tags = (f"{tag_prefix}{n:04d}" for n in itertools.count(1))
        self._max_buffered_literal = max_buffered_literal
        self._max_response = max_response_size
        self._stream_threshold = stream_threshold
        self._literal_plus = literal_plus
        self.capabilities: frozenset[str] = frozenset()
        self.greeted = False
        self.bye: StatusResponse | None = None
        # Receiving: the parts of the response being assembled.
        self._state = _LINE
        self._parts: list[bytes] = []
        self._literals: list[bytes | StreamedLiteral] = []
        self._response_bytes = 0
        self._pending_literal = 0
        self._resume: FetchPrefix | None = None  # the FETCH being streamed
        self._resume_at = 0  # index of the first part after its last streamed literal
        self._eof = False
        self._ready: deque[FetchResponse] = deque()
        # Sending.
        self._in_flight: dict[str, c.Command] = {}
        self._out: deque[tuple[str, Piece]] = deque()
        self._waiting_tag: str | None = None
        self._auth_tag: str | None = None
        self._idle_tag: str | None = None
        self._open_append: list[object] | None = None  # [tag, bytes still expected]
        self._discard_append = False

    # --- sending -------------------------------------------------------------------------

    @property
    def in_flight(self) -> dict[str, c.Command]:
        """Commands sent and not yet completed, by tag (a copy)."""
        return dict(self._in_flight)

    @property
    def literal_held(self) -> bool:
        """Whether output is held back until the server's ``+`` for a synchronising literal
        (so a caller streaming a large APPEND knows to wait for the continuation)."""
        return self._waiting_tag is not None

    def _literal_plus_max(self) -> int:
        if self._literal_plus is True:
            return _HUGE
        if self._literal_plus is False:
            return -1
        if "LITERAL+" in self.capabilities:
            return _HUGE
        if "LITERAL-" in self.capabilities:
            return _LITERAL_MINUS_MAX
        return -1

    def send(self, command: c.Command | c.Done | c.AuthenticateResponse) -> str:
        """Queue ``command`` and return its tag (for DONE and AUTHENTICATE answers, the tag
        of the IDLE or AUTHENTICATE they belong to)."""
        if self._open_append is not None:
            raise LocalProtocolError("finish the APPEND message (send_literal_data) first")
        if isinstance(command, c.Done | c.AuthenticateResponse):
            return self._send_answer(command)
        if self._auth_tag is not None:
            raise LocalProtocolError("wait for AUTHENTICATE to complete before other commands")
        if self._idle_tag is not None:
            raise LocalProtocolError("end IDLE with Done before other commands")
        tag = next(self._tags)
        streaming_append = isinstance(command, c.Append) and command.message is None
        if isinstance(command, c.Append) and command.message is None:
            pieces = self._append_head(tag, command)
        else:
            pieces = serialize_command(tag, command, literal_plus_max=self._literal_plus_max())
        if isinstance(command, c.Authenticate):
            self._auth_tag = tag
        elif isinstance(command, c.Idle):
            self._idle_tag = tag
        self._in_flight[tag] = command
        self._out.extend((tag, piece) for piece in pieces)
        if streaming_append:
            assert isinstance(command, c.Append)
            assert command.size is not None
            self._open_append = [tag, command.size]
            if command.size == 0:
                self.send_literal_data(b"")
        return tag

    def _send_answer(self, command: c.Done | c.AuthenticateResponse) -> str:
        """DONE for the IDLE in progress, or an answer to AUTHENTICATE's challenge."""
        if isinstance(command, c.Done):
            if self._idle_tag is None:
                raise LocalProtocolError("DONE without an IDLE in progress")
            self._out.append((self._idle_tag, b"DONE\r\n"))
            return self._idle_tag
        if self._auth_tag is None:
            raise LocalProtocolError("an AUTHENTICATE answer without AUTHENTICATE")
        data = command.data
        line = b"*" if data is None else base64.b64encode(data.reveal())
        self._out.append((self._auth_tag, line + b"\r\n"))
        return self._auth_tag

    def _append_head(self, tag: str, command: c.Append) -> list[Piece]:
        """The pieces up to the literal of an APPEND whose message follows through
        :meth:`send_literal_data`."""
        assert command.size is not None
        pieces = serialize_command(
            tag,
            c.Append(command.mailbox, b"", command.flags, command.date),
            literal_plus_max=self._literal_plus_max(),
        )
        # Re-announce the real size: the header was built for an empty message.
        header = pieces[0]
        assert isinstance(header, bytes)
        cut = header.rfind(b"{")
        plus = command.size <= self._literal_plus_max()
        announce = b"{%d%s}\r\n" % (command.size, b"+" if plus else b"")
        return [header[:cut] + announce] + ([] if plus else [WAIT])

    def send_literal_data(self, data: bytes) -> None:
        """Queue the next bytes of the message of an APPEND sent with ``message=None``."""
        if self._open_append is None:
            raise LocalProtocolError("no APPEND is waiting for message data")
        tag, remaining = self._open_append
        assert isinstance(tag, str)
        assert isinstance(remaining, int)
        if len(data) > remaining:
            raise LocalProtocolError("more APPEND data than the announced size")
        remaining -= len(data)
        if data and not self._discard_append:
            self._out.append((tag, bytes(data)))
        if remaining == 0:
            if not self._discard_append:
                self._out.append((tag, b"\r\n"))
            self._open_append = None
            self._discard_append = False
        else:
            self._open_append[1] = remaining

    def data_to_send(self) -> bytes:
        """Bytes to write to the server now (a synchronising literal stays queued until the
        server's ``+``)."""
        return b"".join(self.pieces_to_send())

    def pieces_to_send(self) -> list[bytes]:
        """Like :meth:`data_to_send`, as pieces for ``transport.writelines`` (a large APPEND
        message is handed over without being copied)."""
        if self._waiting_tag is not None:
            return []
        out: list[bytes] = []
        queue = self._out
        while queue:
            tag, piece = queue.popleft()
            if piece is WAIT:
                self._waiting_tag = tag
                break
            assert isinstance(piece, bytes)
            out.append(piece)
        return out

    # --- receiving -----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes received from the server; ``b""`` means the server closed the connection."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("data received after the end of the stream")
        self._framer.feed(data)

    def _need_data(self) -> NeedData | ConnectionClosed:
        if not self._eof:
            return NEED_DATA
        if self._parts or self._state != _LINE or self._framer.buffered():
            raise RemoteProtocolError(
                "the server closed the connection in the middle of a response"
            )
        return ConnectionClosed()

    def next_event(self) -> ClientEvent:
        """The next event, or :data:`NEED_DATA` when more bytes are needed."""
        if self._ready:
            return self._ready.popleft()
        framer = self._framer
        while True:
            if self._state == _STREAM:
                chunk = framer.read_chunk()
                if chunk is None:
                    return self._need_data()
                if len(chunk):
                    return BodyChunk(chunk)
                self._state = _LINE
            elif self._state == _LITERAL:
                literal = framer.read_exact(self._pending_literal)
                if literal is None:
                    return self._need_data()
                self._literals.append(literal)
                self._state = _LINE
            else:
                line = framer.read_line()
                if line is None:
                    return self._need_data()
                event = self._take_line(line)
                if event is not None:
                    return event

    def _take_line(self, line: bytes) -> ClientEvent | None:
        """One line of a response: the event it completes, or None when a literal follows
        that is read before the response goes on."""
        if not self._parts and self.greeted:
            fast = fast_fetch(line)  # the common "* n FETCH (UID u FLAGS (...))"
            if fast is not None:
                self._batch_fast_fetches()
                return fast
        self._count_response_bytes(len(line))
        self._parts.append(line)
        marker = literal_marker(line) if line.endswith(b"}") else None
        if marker is None:
            return self._take_response()
        return self._take_literal_marker(marker.size)

    def _count_response_bytes(self, size: int) -> None:
        self._response_bytes += size
        if self._response_bytes > self._max_response:
            raise RemoteProtocolError("a response larger than the configured maximum")

    def _take_response(self) -> ClientEvent:
        """The response whose last line was just read (the end of a streamed FETCH too)."""
        parts, literals, resume = self._parts, self._literals, self._resume
        self._parts, self._literals, self._resume = [], [], None
        self._response_bytes = 0
        if resume is not None:
            at = self._resume_at
            return FetchEnd(finish_fetch(resume, parts[at:], literals[at:]))
        return self._handle(parse_response(parts, literals))

    def _take_literal_marker(self, size: int) -> FetchStart | None:
        """A line ended with ``{size}``: stream the literal as body chunks when it is a large
        FETCH body, else buffer it (within the caps)."""
        self._framer.check_literal(size)
        if (
            self._stream_threshold is not None
            and size >= self._stream_threshold
            and self.greeted
            and self._parts[0].startswith(b"* ")
        ):
            start = self._try_stream(size)
            if start is not None:
                return start
        if size > self._max_buffered_literal:
            raise RemoteProtocolError(
                f"a literal of {size} bytes where it cannot be streamed "
                f"(limit {self._max_buffered_literal})"
            )
        self._count_response_bytes(size)
        self._pending_literal = size
        self._state = _LITERAL
        return None

    def _batch_fast_fetches(self) -> None:
        """Queue the flag-only FETCH lines that follow (a flags scan sends thousands)."""
        ready = self._ready
        for m in self._framer.match_lines(FAST_FETCH, _BATCH):
            response = fast_fetch_match(m)
            if response is None:
                self._framer.rewind(m.start())
                return
            ready.append(response)

    def _try_stream(self, size: int) -> FetchStart | None:
        placeholder = StreamedLiteral(size)
        at = self._resume_at if self._resume is not None else 0
        try:
            prefix = parse_fetch_prefix(
                self._parts[at:], [*self._literals[at:], placeholder], self._resume
            )
        except RemoteProtocolError:
            return None  # not a body item: buffer it (the final parse decides)
        self._literals.append(placeholder)
        self._framer.start_stream(size)
        self._state = _STREAM
        self._resume = prefix
        self._resume_at = len(self._parts)
        return FetchStart(prefix.fetch, prefix.body)

    def _handle(self, response: Response) -> ClientEvent:
        if not self.greeted:
            if (
                isinstance(response, StatusResponse)
                and response.tag is None
                and response.status in (Status.OK, Status.PREAUTH, Status.BYE)
            ):
                self.greeted = True
                self._note_status(response)
                return Greeting(response)
            raise RemoteProtocolError("the server did not start with a greeting")
        if isinstance(response, FetchResponse):
            return response
        if isinstance(response, StatusResponse):
            self._note_status(response)
            if response.tag is not None:
                return self._complete(response)
            return response
        if isinstance(response, CapabilityResponse):
            self.capabilities = frozenset(x.upper() for x in response.capabilities)
            return response
        if isinstance(response, ContinuationRequest):
            return self._continuation(response)
        return response

    def _note_status(self, response: StatusResponse) -> None:
        if isinstance(response.code, CapabilityCode):
            self.capabilities = frozenset(x.upper() for x in response.code.capabilities)
        if response.status is Status.BYE:
            self.bye = response

    def _continuation(self, response: ContinuationRequest) -> ClientEvent:
        if self._waiting_tag is not None:
            self._waiting_tag = None  # the held-back literal may go now
            return self.next_event()
        if self._auth_tag is not None or self._idle_tag is not None:
            return response
        raise RemoteProtocolError("a continuation request nobody asked for")

    def _complete(self, response: StatusResponse) -> CommandDone:
        tag = response.tag
        assert tag is not None
        command = self._in_flight.pop(tag, None)
        if command is None:
            raise RemoteProtocolError(f"a tagged response for an unknown tag {tag[:20]!r}")
        if tag == self._auth_tag:
            self._auth_tag = None
        if tag == self._idle_tag:
            self._idle_tag = None
        if tag == self._waiting_tag:
            # The server refused the synchronising literal: the rest of the command is not sent.
            self._waiting_tag = None
            self._out = deque((t, p) for t, p in self._out if t != tag)
            if self._open_append is not None and self._open_append[0] == tag:
                self._discard_append = True
        return CommandDone(tag, command, response)
