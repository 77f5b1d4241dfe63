"""Events that :meth:`ClientConnection.next_event` and :meth:`ServerConnection.next_event`
return, besides the plain response types of :mod:`.types`."""

from __future__ import annotations

from dataclasses import field

from exoimap.protocol.commands import Append, Command
from exoimap.protocol.types import (
    BodyData,
    FetchResponse,
    ResponseCode,
    Status,
    StatusResponse,
)
from exoimap.protocol.values import value_class
from exoimap.secrets import Secret

__all__ = [
    "NEED_DATA",
    "AppendChunk",
    "AppendEnd",
    "AppendStart",
    "AuthenticateData",
    "BadCommand",
    "BodyChunk",
    "CommandDone",
    "CommandReceived",
    "ConnectionClosed",
    "FetchEnd",
    "FetchStart",
    "Greeting",
    "IdleDone",
    "NeedData",
]


class NeedData:
    """Returned by ``next_event()`` when more bytes must be received first."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()


@value_class
class ConnectionClosed:
    """The peer closed the connection (``receive_data(b"")``) between messages."""


# --- client side ---------------------------------------------------------------------------


@value_class
class Greeting:
    """The server's first line: untagged OK, PREAUTH or BYE."""

    response: StatusResponse


@value_class
class CommandDone:
    """The tagged OK/NO/BAD that completes the command sent with ``tag``."""

    tag: str
    command: Command
    response: StatusResponse

    @property
    def status(self) -> Status:
        return self.response.status

    @property
    def ok(self) -> bool:
        return self.response.status is Status.OK

    @property
    def code(self) -> ResponseCode | None:
        return self.response.code

    @property
    def text(self) -> str:
        return self.response.text


@value_class
class FetchStart:
    """A FETCH response reached a body literal that will arrive as :class:`BodyChunk` events.

    ``fetch`` holds the items that came before the literal (UID and FLAGS may come before or
    after it; :class:`FetchEnd` has them all); ``body`` names the section and its ``size``.
    A FETCH with several large body items has one FetchStart per item and one FetchEnd.
    """

    fetch: FetchResponse
    body: BodyData

    @property
    def seq(self) -> int:
        return self.fetch.seq

    @property
    def uid(self) -> int | None:
        return self.fetch.uid


@value_class
class BodyChunk:
    """A piece of the body literal announced by the last :class:`FetchStart`. ``data`` may
    be a ``memoryview`` of the received bytes: write it out (or copy it) before the next
    ``receive_data`` call if you keep it."""

    data: bytes | memoryview = field(repr=False)


@value_class
class FetchEnd:
    """The FETCH response is complete; streamed bodies have ``data=None`` and their size."""

    fetch: FetchResponse


# --- server side ---------------------------------------------------------------------------


@value_class
class CommandReceived:
    tag: str
    command: Command


@value_class
class BadCommand:
    """A command line that could not be parsed. ``tag`` is None when even the tag was
    unreadable; answer with ``tag BAD ...`` (or ``* BAD ...``). The connection goes on.

    ``reason`` never quotes the line; ``raw`` is the line itself and may hold a password or
    token (a malformed LOGIN): do not log it."""

    tag: str | None
    raw: bytes = field(repr=False)
    reason: str = ""


@value_class
class AuthenticateData:
    """The client's answer to a ``+`` during AUTHENTICATE: decoded bytes, or None when the
    client cancelled with ``*``."""

    tag: str
    data: Secret[bytes] | None


@value_class
class IdleDone:
    """The client sent ``DONE`` to end the IDLE command ``tag``."""

    tag: str


@value_class
class AppendStart:
    """An APPEND announced its message (``command.size`` bytes, ``command.message`` None).

    For a synchronising literal (``synchronizing=True``) the client waits: send a
    :class:`~exoimap.protocol.types.ContinuationRequest` to receive the message, or a tagged
    NO/BAD to refuse it. Then come :class:`BodyChunk` events and :class:`AppendEnd`.
    """

    tag: str
    command: Append
    synchronizing: bool


@value_class
class AppendChunk:
    """A piece of the message announced by the last :class:`AppendStart` (bytes or a
    ``memoryview`` of received bytes)."""

    data: bytes | memoryview = field(repr=False)


@value_class
class AppendEnd:
    """The APPEND's message is complete; answer the command ``tag``."""

    tag: str
    command: Append
