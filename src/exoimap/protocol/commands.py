"""Typed IMAP commands (frozen dataclasses), built by the client and parsed by the server.

Commands carry no tag: :meth:`ClientConnection.send` assigns one and the server delivers it
next to the command in :class:`~exoimap.protocol.events.CommandReceived`. Credentials are
:class:`~exoimap.secrets.Secret` values, so a command's ``repr`` never shows them.
"""

from __future__ import annotations

import datetime as _dt
import enum
from dataclasses import field

from exoimap.errors import LocalProtocolError
from exoimap.protocol.types import SequenceSet
from exoimap.protocol.values import value_class
from exoimap.secrets import Secret

__all__ = [
    "Append",
    "AppendMessage",
    "Authenticate",
    "AuthenticateResponse",
    "BodySection",
    "Capability",
    "Close",
    "Command",
    "Copy",
    "Create",
    "Delete",
    "Done",
    "Enable",
    "Examine",
    "Expunge",
    "Fetch",
    "FetchItem",
    "Id",
    "Idle",
    "List",
    "Login",
    "Logout",
    "Lsub",
    "Move",
    "MultiAppend",
    "Namespace",
    "Noop",
    "QResync",
    "Rename",
    "Search",
    "SearchKey",
    "Select",
    "StatusCommand",
    "StoreFlags",
    "StoreMode",
    "Subscribe",
    "StartTls",
    "TaggedCommand",
    "UidExpunge",
    "Unselect",
    "Unsubscribe",
]


@value_class
class Capability:
    pass


@value_class
class Noop:
    pass


@value_class
class Logout:
    pass


@value_class
class StartTls:
    """RFC 3501 6.2.1: TLS on a plaintext connection, before sign-in."""


@value_class
class Namespace:
    pass


@value_class
class Close:
    pass


@value_class
class Unselect:
    pass


@value_class
class Expunge:
    pass


@value_class
class Idle:
    """IDLE; end it with :class:`Done` after the server's continuation request."""


@value_class
class Done:
    """The ``DONE`` line that ends IDLE (not a tagged command)."""


@value_class
class Login:
    username: str
    password: Secret[str]


@value_class
class Authenticate:
    """``AUTHENTICATE mechanism [initial-response]``.

    ``initial_response`` is the raw (not base64) SASL message, sent inline (SASL-IR) when
    given; an empty one is sent as ``=``. Without it the server answers ``+`` and the client
    sends :class:`AuthenticateResponse`.
    """

    mechanism: str
    initial_response: Secret[bytes] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mechanism", self.mechanism.upper())


@value_class
class AuthenticateResponse:
    """The client's answer to a ``+`` challenge during AUTHENTICATE: raw SASL bytes (sent
    base64), or ``data=None`` to cancel (``*``)."""

    data: Secret[bytes] | None


@value_class
class QResync:
    """``QRESYNC (uidvalidity modseq [known-uids])`` for SELECT/EXAMINE (RFC 7162)."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None


@value_class
class Select:
    """``SELECT mailbox [(CONDSTORE) | (QRESYNC (...))]``."""

    mailbox: str
    condstore: bool = False
    qresync: QResync | None = None


@value_class
class Examine:
    mailbox: str
    condstore: bool = False
    qresync: QResync | None = None


@value_class
class Create:
    mailbox: str


@value_class
class Delete:
    mailbox: str


@value_class
class Rename:
    mailbox: str
    new_name: str


@value_class
class Subscribe:
    mailbox: str


@value_class
class Unsubscribe:
    mailbox: str


@value_class
class List:
    reference: str
    pattern: str


@value_class
class Lsub:
    reference: str
    pattern: str


@value_class
class StatusCommand:
    """``STATUS mailbox (MESSAGES UIDNEXT ...)``."""

    mailbox: str
    items: tuple[str, ...]


@value_class
class BodySection:
    """``BODY[section]<start.length>``, ``BODY.PEEK[...]`` or ``BINARY[.PEEK][...]``."""

    section: str = ""
    peek: bool = False
    partial: tuple[int, int] | None = None
    binary: bool = False


#: A fetch item: a plain name (``UID``, ``FLAGS``, ``INTERNALDATE``, ``RFC822.SIZE``,
#: ``ENVELOPE``, ``BODYSTRUCTURE``, ``MODSEQ``, ``ALL``...) or a body section.
FetchItem = str | BodySection


@value_class
class Fetch:
    sequence_set: SequenceSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    changed_since: int | None = None
    #: QRESYNC: also report expunged UIDs as VANISHED (needs ``changed_since`` and ``uid``).
    vanished: bool = False

    def __post_init__(self) -> None:
        if self.vanished and (self.changed_since is None or not self.uid):
            raise LocalProtocolError("VANISHED needs UID FETCH with CHANGEDSINCE")


#: A search key: an atom or string argument, or a parenthesised group of keys.
SearchKey = str | tuple["SearchKey", ...]


@value_class
class Search:
    """``[UID] SEARCH [CHARSET x] criteria``; ``criteria`` are the tokens as written, e.g.
    ``("UID", "5:*")`` or ``("HEADER", "Message-ID", "<x@y>")``."""

    criteria: tuple[SearchKey, ...]
    uid: bool = False
    charset: str | None = None


class StoreMode(enum.Enum):
    SET = ""
    ADD = "+"
    REMOVE = "-"


@value_class
class StoreFlags:
    """STORE: set, add or remove flags (named apart from :class:`exoimap.store.base.Store`)."""

    sequence_set: SequenceSet
    flags: tuple[str, ...]
    mode: StoreMode = StoreMode.SET
    silent: bool = False
    uid: bool = False
    unchanged_since: int | None = None


@value_class
class Copy:
    sequence_set: SequenceSet
    mailbox: str
    uid: bool = False


@value_class
class Move:
    sequence_set: SequenceSet
    mailbox: str
    uid: bool = False


@value_class
class UidExpunge:
    sequence_set: SequenceSet


@value_class
class Append:
    """``APPEND mailbox [(flags)] [date] {size}``.

    ``message`` holds the whole message; for large messages leave it None, give ``size``,
    and feed the bytes with :meth:`ClientConnection.send_literal_data` (client side). On the
    server side an APPEND arrives as events (:class:`AppendStart`, chunks, :class:`AppendEnd`)
    and ``message`` is None there. ``date`` (the message's INTERNALDATE) must be aware.
    """

    mailbox: str
    message: bytes | None = field(default=None, repr=False)
    flags: tuple[str, ...] = ()
    date: _dt.datetime | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if self.message is not None:
            if self.size is None:
                object.__setattr__(self, "size", len(self.message))
            elif self.size != len(self.message):
                raise LocalProtocolError("APPEND size does not match the message length")
        elif self.size is None or self.size < 0:
            raise LocalProtocolError("APPEND needs the message or its size")
        if self.date is not None and self.date.utcoffset() is None:
            raise LocalProtocolError("APPEND dates must be timezone-aware")


@value_class
class Enable:
    capabilities: tuple[str, ...]


@value_class
class Id:
    """``ID ("name" "value" ...)``, or ``ID NIL`` when ``params`` is None."""

    params: tuple[tuple[str, str | None], ...] | None = None


@value_class
class AppendMessage:
    """One message of a :class:`MultiAppend`: its bytes, flags and INTERNALDATE (aware)."""

    message: bytes = field(repr=False)
    flags: tuple[str, ...] = ()
    date: _dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.date is not None and self.date.utcoffset() is None:
            raise LocalProtocolError("APPEND dates must be timezone-aware")


@value_class
class MultiAppend:
    """``APPEND mailbox (flags) date {size}... (flags) date {size}`` (RFC 3502
    MULTIAPPEND, only where the server offers it): the server stores every message or
    none, and its APPENDUID names them all in order."""

    mailbox: str
    messages: tuple[AppendMessage, ...]

    def __post_init__(self) -> None:
        if not self.messages:
            raise LocalProtocolError("MULTIAPPEND needs at least one message")


Command = (
    Capability
    | Noop
    | Logout
    | StartTls
    | Namespace
    | Close
    | Unselect
    | Expunge
    | Idle
    | Login
    | Authenticate
    | Select
    | Examine
    | Create
    | Delete
    | Rename
    | Subscribe
    | Unsubscribe
    | List
    | Lsub
    | StatusCommand
    | Fetch
    | Search
    | StoreFlags
    | Copy
    | Move
    | UidExpunge
    | Append
    | MultiAppend
    | Enable
    | Id
)


@value_class
class TaggedCommand:
    """A command with its tag, as the server parser returns it."""

    tag: str
    command: Command
