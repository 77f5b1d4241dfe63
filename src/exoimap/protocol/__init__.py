"""Sans-I/O IMAP protocol core: bytes in, events out. No sockets, files, clocks or threads.

Both sides work the same way (h11 style)::

    conn.receive_data(data)          # bytes received; b"" when the peer closed
    while (event := conn.next_event()) is not NEED_DATA:
        ...                          # handle the event
    tag = conn.send(command)         # client: typed command -> its tag
    conn.send(response)              # server: typed response
    transport.write(conn.data_to_send())

Client (``exoimap.net.imap`` builds on this)::

    from exoimap.protocol import ClientConnection, Fetch, BodySection, SequenceSet, NEED_DATA
    conn = ClientConnection()
    conn.receive_data(b"* OK The Microsoft Exchange IMAP4 service is ready.\\r\\n")
    greeting = conn.next_event()                       # Greeting(...)
    tag = conn.send(Fetch(SequenceSet.range(1), ("UID", "FLAGS", BodySection(peek=True)), uid=True))

Client events: :class:`Greeting`; untagged responses as their own types
(:class:`CapabilityResponse`, :class:`ExistsResponse`, :class:`ListResponse`,
:class:`StatusData`, :class:`FetchResponse`, untagged :class:`StatusResponse` for
``* OK/NO/BAD/BYE``, :class:`BareResponseCode` for Exchange's bare ``[COPYUID ...]`` line,
...); :class:`CommandDone` (tag, the command, status, code, text) when a tagged response
completes a command; :class:`ContinuationRequest` during AUTHENTICATE (answer with
:class:`AuthenticateResponse`) and IDLE (end with :class:`Done`). Continuations for
synchronising literals are handled inside: ``data_to_send()`` holds the literal back until
the server's ``+`` (unless LITERAL+ was advertised). Many commands may be in flight at
once; each tagged response is matched to its command.

Large bodies: a FETCH body literal of at least ``stream_threshold`` bytes comes as
:class:`FetchStart` (seq, the items known so far, the section and size), then
:class:`BodyChunk` events (bytes or memoryview; write them straight to a file), then
:class:`FetchEnd` with every item (UID/FLAGS may follow the body). Smaller FETCH responses
come whole as :class:`FetchResponse`. Memory stays bounded by the caps, whatever the size.

Server (``exoimap.sandbox.exchange`` and the proxy build on this): events are
:class:`CommandReceived` (tag + typed command), :class:`BadCommand` (answer BAD; the
connection survives garbage), :class:`AuthenticateData`, :class:`IdleDone`, and for APPEND
:class:`AppendStart` (send ``ContinuationRequest`` to take a synchronising literal, or a
tagged NO), :class:`AppendChunk`..., :class:`AppendEnd`. ``send()`` serialises any
response, with exact texts (``ContinuationRequest(None)`` is a bare ``+``;
``StatusData(trailing_space=True)`` reproduces Exchange's STATUS quirk).

Errors: malformed input raises :class:`exoimap.errors.RemoteProtocolError` (never
IndexError/ValueError/UnicodeError); invalid requests from our own code raise
:class:`exoimap.errors.LocalProtocolError`.
"""

from exoimap.protocol.client import ClientConnection, ClientEvent
from exoimap.protocol.commands import (
    Append,
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
    Namespace,
    Noop,
    Rename,
    Search,
    SearchKey,
    Select,
    StatusCommand,
    Store,
    StoreMode,
    Subscribe,
    TaggedCommand,
    UidExpunge,
    Unselect,
    Unsubscribe,
    format_internal_date,
)
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
    session_invalidated_reason,
    throttle_backoff,
)
from exoimap.protocol.parse import parse_response_line
from exoimap.protocol.parse_command import parse_command_line
from exoimap.protocol.serialize import exchange_mailbox, serialize_command, serialize_response
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
    "Multipart",
    "Namespace",
    "NamespaceResponse",
    "NeedData",
    "Noop",
    "NumberCode",
    "OtherCode",
    "PermanentFlagsCode",
    "RecentResponse",
    "Rename",
    "Response",
    "ResponseCode",
    "Search",
    "SearchKey",
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
    "Store",
    "StoreMode",
    "Subscribe",
    "TaggedCommand",
    "UidExpunge",
    "UnknownResponse",
    "Unselect",
    "Unsubscribe",
    "VanishedResponse",
    "decode_mailbox",
    "encode_mailbox",
    "exchange_mailbox",
    "format_internal_date",
    "parse_command_line",
    "parse_response_line",
    "serialize_command",
    "serialize_response",
    "session_invalidated_reason",
    "throttle_backoff",
]
