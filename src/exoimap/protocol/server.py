"""The server side of an IMAP connection, without I/O (for the sandbox and the proxy).

Events: :class:`CommandReceived` (tag + typed command), :class:`BadCommand` (a line that
does not parse; answer ``BAD``, the connection goes on), :class:`AuthenticateData` (the
client's answers during AUTHENTICATE), :class:`IdleDone`, and for APPEND
:class:`AppendStart` / :class:`AppendChunk`... / :class:`AppendEnd` so messages of any size
stream through. A line or a literal over its cap raises
:class:`~exoimap.errors.RemoteProtocolError`: the caller should close the connection.

Send any response type with :meth:`ServerConnection.send`; ``send_raw`` writes bytes as
they are (fault injection). Synchronising literals inside ordinary commands are accepted
automatically with ``literal_continuation``; for APPEND the server decides: send a
:class:`ContinuationRequest` to take the message, or a tagged NO/BAD to refuse it.
"""

from __future__ import annotations

from exoimap.errors import LocalProtocolError, RemoteProtocolError
from exoimap.protocol import commands as c
from exoimap.protocol.events import (
    NEED_DATA,
    AppendChunk,
    AppendEnd,
    AppendStart,
    AuthenticateData,
    BadCommand,
    CommandReceived,
    ConnectionClosed,
    IdleDone,
    NeedData,
)
from exoimap.protocol.framing import Framer, literal_marker
from exoimap.protocol.parse_command import (
    parse_append_prefix,
    parse_authenticate_line,
    parse_command,
    recover_tag,
)
from exoimap.protocol.reader import StreamedLiteral
from exoimap.protocol.serialize import (
    fetch_head,
    fetch_next,
    fetch_tail,
    serialize_response,
    serialize_response_pieces,
)
from exoimap.protocol.types import (
    BodyData,
    ContinuationRequest,
    FetchResponse,
    Response,
    StatusResponse,
)

__all__ = ["ServerConnection", "ServerEvent"]

ServerEvent = (
    CommandReceived
    | BadCommand
    | AuthenticateData
    | IdleDone
    | AppendStart
    | AppendChunk
    | AppendEnd
    | ConnectionClosed
    | NeedData
)

_LINE, _LITERAL, _APPEND_WAIT, _APPEND_STREAM, _APPEND_TAIL = range(5)


class ServerConnection:
    """Sans-I/O IMAP server connection: bytes in, events out; responses in, bytes out."""

    def __init__(
        self,
        *,
        max_line_length: int = 64 << 10,
        max_literal_size: int = 200 << 20,
        max_buffered_literal: int = 64 << 10,
        literal_continuation: ContinuationRequest | None = None,
    ) -> None:
        """``literal_continuation`` is what answers a synchronising literal inside an ordinary
        command; the default text is the one Exchange is believed to send (not confirmed
        by the spec, hence configurable)."""
        self._framer = Framer(max_line_length=max_line_length, max_literal_size=max_literal_size)
        self._max_buffered_literal = max_buffered_literal
        self._continuation = literal_continuation or ContinuationRequest(
            "Ready for additional command text."
        )
        self._out: list[bytes] = []
        self._state = _LINE
        self._parts: list[bytes] = []
        self._literals: list[bytes | StreamedLiteral] = []
        self._pending_literal = 0
        self._append: tuple[str, c.Append] | None = None
        self._auth_tag: str | None = None
        self._idle_tag: str | None = None
        self._eof = False
        self._body_left: int | None = None  # bytes of a streamed FETCH body still to send

    # --- sending -------------------------------------------------------------------------

    def send(self, response: Response) -> None:
        """Queue a response. A tagged response ends an AUTHENTICATE or IDLE with that tag; a
        continuation request or tagged answer settles a waiting APPEND."""
        if self._body_left is not None:
            raise LocalProtocolError("finish the streamed FETCH body first")
        data = serialize_response_pieces(response)
        if self._state == _APPEND_WAIT and self._append is not None:
            if isinstance(response, ContinuationRequest):
                self._framer.start_stream(self._append[1].size or 0)
                self._state = _APPEND_STREAM
            elif isinstance(response, StatusResponse) and response.tag == self._append[0]:
                self._append = None  # refused: the client will not send the message
                self._state = _LINE
        if isinstance(response, StatusResponse) and response.tag is not None:
            if response.tag == self._auth_tag:
                self._auth_tag = None
            if response.tag == self._idle_tag:
                self._idle_tag = None
        self._out += data

    def send_fetch_start(self, fetch: FetchResponse, body: BodyData, size: int) -> None:
        """Start a FETCH response whose body literal of ``size`` bytes follows through
        :meth:`send_body_data` (for the proxy: bodies pass through without being held)."""
        if self._body_left is not None:
            raise LocalProtocolError("a streamed FETCH body is already being sent")
        self._out.append(fetch_head(fetch, body, size))
        self._body_left = size

    def send_fetch_next(self, between: FetchResponse, body: BodyData, size: int) -> None:
        """Once a streamed body is complete, start the next body literal of the same FETCH
        response (``between``: the items that came between the two)."""
        if self._body_left != 0:
            raise LocalProtocolError("the streamed FETCH body is not complete")
        self._out.append(fetch_next(between, body, size))
        self._body_left = size

    def send_body_data(self, data: bytes) -> None:
        if self._body_left is None or len(data) > self._body_left:
            raise LocalProtocolError("body data beyond the announced literal size")
        if data:
            self._out.append(bytes(data))
        self._body_left -= len(data)

    def send_fetch_end(self, trailing: FetchResponse | None = None) -> None:
        """Finish the streamed FETCH: items after the body (FLAGS, UID...) and ``)``."""
        if self._body_left != 0:
            raise LocalProtocolError("the streamed FETCH body is not complete")
        self._out.append(fetch_tail(trailing))
        self._body_left = None

    def send_raw(self, data: bytes) -> None:
        """Queue bytes exactly as given (for fault injection and byte-exact replays)."""
        self._out.append(bytes(data))

    def data_to_send(self) -> bytes:
        """Everything queued, as one bytes object."""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def pieces_to_send(self) -> list[bytes]:
        """Everything queued, as pieces (for ``transport.writelines``: large message
        bodies are not copied)."""
        pieces, self._out = self._out, []
        return pieces

    # --- receiving -----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; ``b""`` means the client closed the connection."""
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
            raise RemoteProtocolError("the client closed the connection in the middle of a command")
        return ConnectionClosed()

    def next_event(self) -> ServerEvent:
        framer = self._framer
        while True:
            state = self._state
            if state == _APPEND_WAIT:
                return NEED_DATA if not self._eof else self._need_data()
            if state == _APPEND_STREAM:
                chunk = framer.read_chunk()
                if chunk is None:
                    return self._need_data()
                if len(chunk):
                    return AppendChunk(chunk)
                self._state = _APPEND_TAIL
            elif state == _LITERAL:
                literal = framer.read_exact(self._pending_literal)
                if literal is None:
                    return self._need_data()
                self._literals.append(literal)
                self._state = _LINE
            else:
                line = framer.read_line()
                if line is None:
                    return self._need_data()
                event = self._append_tail(line) if state == _APPEND_TAIL else self._take_line(line)
                if event is not None:
                    return event

    def _take_line(self, line: bytes) -> ServerEvent | None:
        """One line of a command: the event it completes, or None when a literal follows."""
        if not self._parts:
            special = self._special_line(line)
            if special is not None:
                return special
        self._parts.append(line)
        marker = literal_marker(line) if line.endswith(b"}") else None
        if marker is None:
            return self._complete()
        self._framer.check_literal(marker.size)
        append = parse_append_prefix(self._parts, self._literals)
        if append is not None:
            return self._start_append(append, marker.size, marker.synchronizing)
        if marker.size > self._max_buffered_literal:
            if not marker.synchronizing:
                raise RemoteProtocolError(f"a literal of {marker.size} bytes is too large")
            return self._bad(b"\r\n".join(self._parts), "a literal too large")
        if marker.synchronizing:
            self._out.append(serialize_response(self._continuation))
        self._pending_literal = marker.size
        self._state = _LITERAL
        return None

    def _start_append(
        self, append: tuple[str, c.Append], size: int, synchronizing: bool
    ) -> AppendStart:
        """An APPEND reached its message: wait for the go-ahead, or stream it now."""
        tag, command = append
        self._append = append
        self._parts, self._literals = [], []
        if synchronizing:
            self._state = _APPEND_WAIT
        else:
            self._framer.start_stream(size)
            self._state = _APPEND_STREAM
        return AppendStart(tag, command, synchronizing)

    def _special_line(self, line: bytes) -> AuthenticateData | IdleDone | BadCommand | None:
        """Lines that are not commands: AUTHENTICATE answers and IDLE's DONE."""
        if self._auth_tag is not None:
            tag = self._auth_tag
            try:
                return AuthenticateData(tag, parse_authenticate_line(line))
            except RemoteProtocolError as exc:
                return BadCommand(tag, line, str(exc))
        if self._idle_tag is not None:
            if line.strip().upper() == b"DONE":
                tag, self._idle_tag = self._idle_tag, None
                return IdleDone(tag)
            return BadCommand(self._idle_tag, line, "expected DONE")
        return None

    def _complete(self) -> CommandReceived | BadCommand:
        parts, literals = self._parts, self._literals
        self._parts, self._literals = [], []
        try:
            tagged = parse_command(parts, literals)
        except RemoteProtocolError as exc:
            return BadCommand(recover_tag(parts[0]), b"\r\n".join(parts), str(exc))
        command = tagged.command
        if isinstance(command, c.Authenticate):
            self._auth_tag = tagged.tag
        elif isinstance(command, c.Idle):
            self._idle_tag = tagged.tag
        return CommandReceived(tagged.tag, command)

    def _bad(self, raw: bytes, reason: str) -> BadCommand:
        tag = recover_tag(self._parts[0]) if self._parts else None
        self._parts, self._literals = [], []
        return BadCommand(tag, raw, reason)

    def _append_tail(self, line: bytes) -> AppendEnd | BadCommand:
        assert self._append is not None
        tag, command = self._append
        self._append = None
        self._state = _LINE
        if line.strip():
            if literal_marker(line) is not None:
                raise RemoteProtocolError("MULTIAPPEND is not supported")
            return BadCommand(tag, line, "unexpected data after the APPEND message")
        return AppendEnd(tag, command)
