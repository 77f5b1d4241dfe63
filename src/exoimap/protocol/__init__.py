r"""Sans-I/O IMAP protocol core: bytes in, events out. No sockets, files, clocks or threads.

Both sides work the same way (h11 style)::

    conn.receive_data(data)          # bytes received; b"" when the peer closed
    while (event := conn.next_event()) is not NEED_DATA:
        ...                          # handle the event
    tag = conn.send(command)         # client: typed command -> its tag
    conn.send(response)              # server: typed response
    transport.write(conn.data_to_send())   # or writelines(conn.pieces_to_send())

Client (``exoimap.net.imap`` builds on this). Bodies of at least ``stream_threshold`` bytes
arrive as FetchStart, BodyChunk..., FetchEnd:

>>> from exoimap.protocol import *
>>> conn = ClientConnection(stream_threshold=4)
>>> conn.receive_data(b"* OK The Microsoft Exchange IMAP4 service is ready.\r\n")
>>> conn.next_event().response.text
'The Microsoft Exchange IMAP4 service is ready.'
>>> tag = conn.send(Fetch(SequenceSet.range(1), ("UID", BodySection(peek=True)), uid=True))
>>> conn.data_to_send()
b'A0001 UID FETCH 1:* (UID BODY.PEEK[])\r\n'
>>> conn.receive_data(b"* 1 FETCH (UID 7 BODY[] {5}\r\nhello FLAGS (\\Seen))\r\nA0001 OK Done\r\n")
>>> start = conn.next_event()
>>> (type(start).__name__, start.seq, start.uid, start.body.size)
('FetchStart', 1, 7, 5)
>>> bytes(conn.next_event().data)
b'hello'
>>> end = conn.next_event()
>>> (type(end).__name__, end.fetch.uid, end.fetch.flags)
('FetchEnd', 7, ('\\Seen',))
>>> done = conn.next_event()
>>> (done.tag, done.ok, done.text)
('A0001', True, 'Done')
>>> conn.next_event() is NEED_DATA
True

Client events: :class:`Greeting`; untagged responses as their own types
(:class:`CapabilityResponse`, :class:`ExistsResponse`, :class:`ListResponse`,
:class:`StatusData`, :class:`FetchResponse`, untagged :class:`StatusResponse` for
``* OK/NO/BAD/BYE``, :class:`BareResponseCode` for Exchange's bare ``[COPYUID ...]`` line,
...); :class:`CommandDone` (tag, the command, status, code, text) when a tagged response
completes a command; :class:`ContinuationRequest` during AUTHENTICATE (answer with
:class:`AuthenticateResponse`) and IDLE (end with :class:`Done`). Continuations for
synchronising literals are handled inside: ``data_to_send()`` holds the literal back until
the server's ``+`` (unless LITERAL+ was advertised). Many commands may be in flight at
once; each tagged response is matched to its command. Large APPEND messages can be fed
with ``send(Append(mailbox, size=n))`` then ``send_literal_data(chunk)``.
:func:`error_for` maps Exchange's throttling and BYE answers to exceptions (the one place
that reads those texts: :mod:`exoimap.protocol.answers`).

Server (``exoimap.sandbox.exchange`` and the proxy build on this):

>>> server = ServerConnection()
>>> server.receive_data(b'a1 SELECT "Sent Items"\r\n')
>>> server.next_event()
CommandReceived(tag='a1', command=Select(mailbox='Sent Items', condstore=False, qresync=None))
>>> server.send(StatusResponse("a1", Status.OK, SimpleCode("READ-WRITE"), "SELECT completed."))
>>> server.data_to_send()
b'a1 OK [READ-WRITE] SELECT completed.\r\n'

Server events are :class:`CommandReceived` (tag + typed command), :class:`BadCommand`
(answer BAD; the connection survives garbage), :class:`AuthenticateData`,
:class:`IdleDone`, and for APPEND :class:`AppendStart` (send ``ContinuationRequest`` to take
a synchronising literal, or a tagged NO), :class:`AppendChunk`..., :class:`AppendEnd`.
``send()`` serialises any response, with exact texts (``ContinuationRequest(None)`` is a
bare ``+``; ``StatusData(trailing_space=True)`` reproduces Exchange's STATUS quirk; LIST
names follow Exchange's atom/quoted/literal rules); ``send_raw()`` writes bytes as given;
``send_fetch_start/send_body_data/send_fetch_end`` stream a large body out.
:func:`search_tree` turns SEARCH criteria into a tree to evaluate.

Dates: :func:`parse_date_time` / :func:`format_date_time` (INTERNALDATE, APPEND; FETCH
events and commands carry aware ``datetime`` values) and :func:`parse_date` /
:func:`format_date` (SEARCH). Message headers (the header block, unfolded fields, the one
Message-ID rule every store uses) are read by :mod:`exoimap.protocol.headers`.

Errors: malformed input raises :class:`exoimap.errors.RemoteProtocolError` (never
IndexError/ValueError/UnicodeError); invalid requests from our own code raise
:class:`exoimap.errors.LocalProtocolError`. A line or literal over its cap is always a
``RemoteProtocolError`` (close the connection).
"""

from exoimap.protocol.answers import (
    connection_lost_for,
    error_for,
    session_invalidated_reason,
    throttle_backoff,
)
from exoimap.protocol.client import ClientConnection, ClientEvent
from exoimap.protocol.commands import (
    Append,
    AppendMessage,
    Authenticate,
    AuthenticateResponse,
    BodySection,
    Capability,
    Close,
    Command,
    Copy,
    Create,
    Delete,
    Done,
    Enable,
    Examine,
    Expunge,
    Fetch,
    FetchItem,
    Id,
    Idle,
    List,
    Login,
    Logout,
    Lsub,
    Move,
    MultiAppend,
    Namespace,
    Noop,
    QResync,
    Rename,
    Search,
    SearchKey,
    Select,
    StatusCommand,
    StoreFlags,
    StoreMode,
    Subscribe,
    TaggedCommand,
    UidExpunge,
    Unselect,
    Unsubscribe,
)
from exoimap.protocol.dates import format_date, format_date_time, parse_date, parse_date_time
from exoimap.protocol.events import (
    NEED_DATA,
    AppendChunk,
    AppendEnd,
    AppendStart,
    AuthenticateData,
    BadCommand,
    BodyChunk,
    CommandDone,
    CommandReceived,
    ConnectionClosed,
    FetchEnd,
    FetchStart,
    Greeting,
    IdleDone,
    NeedData,
)
from exoimap.protocol.parse import parse_response_line
from exoimap.protocol.parse_command import parse_command_line
from exoimap.protocol.search import (
    SearchAnd,
    SearchKeyword,
    SearchNode,
    SearchNot,
    SearchOr,
    search_tree,
)
from exoimap.protocol.serialize import exchange_mailbox, serialize_response
from exoimap.protocol.serialize_command import serialize_command
from exoimap.protocol.server import ServerConnection, ServerEvent
from exoimap.protocol.types import (
    Address,
    AppendUidCode,
    BareResponseCode,
    BodyData,
    BodyPart,
    BodyStructure,
    CapabilityCode,
    CapabilityResponse,
    ContinuationRequest,
    CopyUidCode,
    Disposition,
    EnabledResponse,
    Envelope,
    ESearchResponse,
    ExistsResponse,
    ExpungeResponse,
    FetchResponse,
    FlagsResponse,
    IdResponse,
    ListResponse,
    Multipart,
    NamespaceResponse,
    NumberCode,
    OtherCode,
    PermanentFlagsCode,
    RecentResponse,
    Response,
    ResponseCode,
    SearchResponse,
    SequenceSet,
    SimpleCode,
    Status,
    StatusData,
    StatusResponse,
    UnknownResponse,
    VanishedResponse,
)
from exoimap.protocol.utf7 import decode_mailbox, encode_mailbox

__all__ = [
    "NEED_DATA",
    "Address",
    "Append",
    "AppendMessage",
    "AppendChunk",
    "AppendEnd",
    "AppendStart",
    "AppendUidCode",
    "Authenticate",
    "AuthenticateData",
    "AuthenticateResponse",
    "BadCommand",
    "BareResponseCode",
    "BodyChunk",
    "BodyData",
    "BodyPart",
    "BodySection",
    "BodyStructure",
    "Capability",
    "CapabilityCode",
    "CapabilityResponse",
    "ClientConnection",
    "ClientEvent",
    "Close",
    "Command",
    "CommandDone",
    "CommandReceived",
    "ConnectionClosed",
    "ContinuationRequest",
    "Copy",
    "CopyUidCode",
    "Create",
    "Delete",
    "Disposition",
    "Done",
    "ESearchResponse",
    "Enable",
    "EnabledResponse",
    "Envelope",
    "Examine",
    "ExistsResponse",
    "Expunge",
    "ExpungeResponse",
    "Fetch",
    "FetchEnd",
    "FetchItem",
    "FetchResponse",
    "FetchStart",
    "FlagsResponse",
    "Greeting",
    "Id",
    "IdResponse",
    "Idle",
    "IdleDone",
    "List",
    "ListResponse",
    "Login",
    "Logout",
    "Lsub",
    "Move",
    "MultiAppend",
    "Multipart",
    "Namespace",
    "NamespaceResponse",
    "NeedData",
    "Noop",
    "NumberCode",
    "OtherCode",
    "PermanentFlagsCode",
    "QResync",
    "RecentResponse",
    "Rename",
    "Response",
    "ResponseCode",
    "Search",
    "SearchAnd",
    "SearchKey",
    "SearchKeyword",
    "SearchNode",
    "SearchNot",
    "SearchOr",
    "SearchResponse",
    "Select",
    "SequenceSet",
    "ServerConnection",
    "ServerEvent",
    "SimpleCode",
    "Status",
    "StatusCommand",
    "StatusData",
    "StatusResponse",
    "StoreFlags",
    "StoreMode",
    "Subscribe",
    "TaggedCommand",
    "UidExpunge",
    "UnknownResponse",
    "Unselect",
    "Unsubscribe",
    "VanishedResponse",
    "connection_lost_for",
    "decode_mailbox",
    "encode_mailbox",
    "error_for",
    "exchange_mailbox",
    "format_date",
    "format_date_time",
    "parse_command_line",
    "parse_date",
    "parse_date_time",
    "parse_response_line",
    "serialize_command",
    "search_tree",
    "serialize_response",
    "session_invalidated_reason",
    "throttle_backoff",
]
