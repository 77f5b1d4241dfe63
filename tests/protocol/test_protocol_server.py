"""ServerConnection: typed commands in, exact Exchange texts out, garbage survived, APPEND
streamed, AUTHENTICATE and IDLE exchanges; and a client and a server talking in memory."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from exoimap.errors import LocalProtocolError, RemoteProtocolError
from exoimap.protocol import (
    NEED_DATA,
    Append,
    AppendChunk,
    AppendEnd,
    AppendStart,
    Authenticate,
    AuthenticateData,
    AuthenticateResponse,
    BadCommand,
    BareResponseCode,
    BodyChunk,
    BodyData,
    ClientConnection,
    CommandDone,
    CommandReceived,
    ConnectionClosed,
    ContinuationRequest,
    CopyUidCode,
    Done,
    ExistsResponse,
    FetchResponse,
    FetchStart,
    Greeting,
    Idle,
    IdleDone,
    ListResponse,
    Login,
    Noop,
    SequenceSet,
    ServerConnection,
    SimpleCode,
    Status,
    StatusData,
    StatusResponse,
    exchange_mailbox,
)
from exoimap.protocol.sasl import parse_xoauth2, xoauth2
from exoimap.secrets import Secret

from .protocol_helpers import drain, feed


def sent(response) -> bytes:
    server = ServerConnection()
    server.send(response)
    return server.data_to_send()


def test_exact_exchange_texts() -> None:
    greeting = (
        "The Microsoft Exchange IMAP4 service is ready. [TQBXAEgAUABSADIAMQBDAEEAMAAwADYAMAA=]"
    )
    assert sent(StatusResponse(None, Status.OK, None, greeting)) == f"* OK {greeting}\r\n".encode()
    assert sent(StatusResponse("TAG", Status.BAD, None, "Command Error. 12")) == (
        b"TAG BAD Command Error. 12\r\n"
    )
    assert sent(StatusResponse(None, Status.BYE, None, "Connection closed. 14")) == (
        b"* BYE Connection closed. 14\r\n"
    )
    assert sent(ContinuationRequest("IDLE accepted, awaiting DONE command.")) == (
        b"+ IDLE accepted, awaiting DONE command.\r\n"
    )
    assert sent(ContinuationRequest(None)) == b"+\r\n"
    assert sent(ContinuationRequest("")) == b"+ \r\n"
    assert sent(StatusData("Sent Items", (("MESSAGES", 3),), trailing_space=True)) == (
        b'* STATUS "Sent Items" (MESSAGES 3) \r\n'
    )
    assert sent(BareResponseCode(CopyUidCode(55, SequenceSet.of(31), SequenceSet.of(6)))) == (
        b"[COPYUID 55 31 6]\r\n"
    )
    assert sent(StatusResponse("A1", Status.OK, SimpleCode("READ-WRITE"), "SELECT completed.")) == (
        b"A1 OK [READ-WRITE] SELECT completed.\r\n"
    )


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("Drafts", b"Drafts"),
        ("Sent Items", b'"Sent Items"'),
        ("", b'""'),
        ("a(b", b'"a(b"'),
        ("a%b", b'"a%b"'),
        ("a*b", b'"a*b"'),
        ("a]b", b'"a]b"'),
        ("a{b", b'"a{b"'),
        ('Say "hi"', b'{8}\r\nSay "hi"'),
        ("back\\slash", b"{10}\r\nback\\slash"),
        ("Entwürfe", b"Entw&APw-rfe"),
        ("Inbox/Sub", b"Inbox/Sub"),
    ],
)
def test_list_names_follow_exchange_rules(name: str, wire: bytes) -> None:
    assert exchange_mailbox(name) == wire
    line = sent(ListResponse(("\\HasNoChildren",), "/", name))
    assert line == b'* LIST (\\HasNoChildren) "/" ' + wire + b"\r\n"


def server_events(data: bytes, *, bytewise: bool, server: ServerConnection | None = None):
    server = server or ServerConnection()
    return feed(server, data, bytewise=bytewise), server


@pytest.mark.parametrize("bytewise", [False, True])
def test_garbage_becomes_bad_command_and_the_connection_survives(bytewise: bool) -> None:
    data = b"\x00\xff garbage\r\nA1 FROB x\r\nA2 SELECT\r\nA3 NOOP\r\n"
    events, _ = server_events(data, bytewise=bytewise)
    assert [type(e) for e in events] == [BadCommand, BadCommand, BadCommand, CommandReceived]
    assert events[0].tag is None
    assert events[0].raw == b"\x00\xff garbage"
    assert events[1].tag == "A1"
    assert events[2].tag == "A2"
    assert events[3] == CommandReceived("A3", Noop())


def test_line_over_the_cap_is_a_hard_error() -> None:
    server = ServerConnection(max_line_length=100)
    server.receive_data(b"A1 NOOP " + b"x" * 200)
    with pytest.raises(RemoteProtocolError):
        server.next_event()


@pytest.mark.parametrize("bytewise", [False, True])
def test_sync_literal_in_login_is_continued_automatically(bytewise: bool) -> None:
    server = ServerConnection()
    events = feed(server, b"A1 LOGIN {4}\r\n", bytewise=bytewise)
    assert events == []
    assert server.data_to_send() == b"+ Ready for additional command text.\r\n"
    # not a word as the password: every Secret's value is masked in all later log lines
    events = feed(server, b"user {6+}\r\ns3cr3t\r\n", bytewise=bytewise)
    assert events == [CommandReceived("A1", Login("user", Secret("s3cr3t")))]
    assert server.data_to_send() == b""


def test_too_large_literals() -> None:
    server = ServerConnection(max_buffered_literal=10)
    server.receive_data(b"A1 LOGIN {11}\r\nA2 NOOP\r\n")
    first, second = drain(server)
    assert isinstance(first, BadCommand)
    assert first.tag == "A1"
    assert second == CommandReceived("A2", Noop())
    server.receive_data(b"A3 LOGIN {11+}\r\n")
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    server = ServerConnection(max_literal_size=100)
    server.receive_data(b"A1 APPEND INBOX {101}\r\n")
    with pytest.raises(RemoteProtocolError):
        server.next_event()


MESSAGE = b"From: a@b\r\nSubject: test\r\n\r\n" + b"line of text\r\n" * 100


@pytest.mark.parametrize("bytewise", [False, True])
def test_append_synchronising_literal_streams(bytewise: bool) -> None:
    server = ServerConnection()
    head = b'A1 APPEND "Sent Items" (\\Seen) " 5-Nov-2026 06:07:08 +0000" {%d}\r\n' % len(MESSAGE)
    events = feed(server, head, bytewise=bytewise)
    when = dt.datetime(2026, 11, 5, 6, 7, 8, tzinfo=dt.UTC)
    command = Append("Sent Items", None, ("\\Seen",), when, len(MESSAGE))
    assert events == [AppendStart("A1", command, True)]
    # Nothing moves until the server accepts the literal.
    server.receive_data(MESSAGE[:10])
    assert server.next_event() is NEED_DATA
    server.send(ContinuationRequest(None))
    assert server.data_to_send() == b"+\r\n"
    events = feed(server, MESSAGE[10:] + b"\r\nA2 NOOP\r\n", bytewise=bytewise)
    assert events == [
        AppendChunk(MESSAGE),
        AppendEnd("A1", command),
        CommandReceived("A2", Noop()),
    ]


def test_append_refused_before_the_literal() -> None:
    server = ServerConnection()
    server.receive_data(b"A1 APPEND INBOX {999999}\r\n")
    (start,) = drain(server)
    assert start.synchronizing
    server.send(StatusResponse("A1", Status.NO, SimpleCode("TOOBIG"), "Message too big."))
    server.receive_data(b"A2 NOOP\r\n")
    assert drain(server) == [CommandReceived("A2", Noop())]


def test_append_non_synchronising_and_large_in_pieces() -> None:
    size = 3_000_000
    server = ServerConnection()
    server.receive_data(b"A1 APPEND INBOX {%d+}\r\n" % size)
    (start,) = drain(server)
    assert not start.synchronizing
    piece = b"y" * 65536
    received = 0
    left = size
    while left:
        chunk = piece[: min(left, len(piece))]
        left -= len(chunk)
        server.receive_data(chunk)
        for event in drain(server):
            assert isinstance(event, AppendChunk)
            received += len(event.data)
    server.receive_data(b"\r\n")
    (end,) = drain(server)
    assert isinstance(end, AppendEnd)
    assert received == size


def test_append_with_trailing_garbage() -> None:
    server = ServerConnection()
    server.receive_data(b"A1 APPEND INBOX {3+}\r\nabc junk\r\n")
    events = drain(server)
    assert isinstance(events[-1], BadCommand)
    assert events[-1].tag == "A1"


@pytest.mark.parametrize("bytewise", [False, True])
def test_authenticate_exchange(bytewise: bool) -> None:
    server = ServerConnection()
    (received,) = feed(server, b"A1 AUTHENTICATE XOAUTH2\r\n", bytewise=bytewise)
    assert received == CommandReceived("A1", Authenticate("XOAUTH2"))
    server.send(ContinuationRequest(None))
    answer = xoauth2("user@contoso.com", Secret("token-123"))

    (data,) = feed(server, base64.b64encode(answer.reveal()) + b"\r\n", bytewise=bytewise)
    assert isinstance(data, AuthenticateData)
    assert data.tag == "A1"
    assert parse_xoauth2(data.data.reveal()).token.reveal() == "token-123"
    server.send(StatusResponse("A1", Status.NO, None, "AUTHENTICATE failed."))
    # The exchange is over: the next line is a command again.
    assert feed(server, b"A2 NOOP\r\n", bytewise=bytewise) == [CommandReceived("A2", Noop())]


def test_authenticate_cancel_and_bad_base64() -> None:
    server = ServerConnection()
    server.receive_data(b"A2 AUTHENTICATE PLAIN\r\n*\r\n!!!\r\n")
    command, cancel, bad = drain(server)
    assert command.tag == "A2"
    assert cancel == AuthenticateData("A2", None)
    assert isinstance(bad, BadCommand)
    assert bad.tag == "A2"


@pytest.mark.parametrize("bytewise", [False, True])
def test_idle_and_done(bytewise: bool) -> None:
    server = ServerConnection()
    data = b"A1 IDLE\r\nNOOP\r\ndone\r\nA2 NOOP\r\n"
    events = feed(server, data, bytewise=bytewise)
    assert events[0] == CommandReceived("A1", Idle())
    assert isinstance(events[1], BadCommand)
    assert events[2] == IdleDone("A1")
    assert events[3] == CommandReceived("A2", Noop())


def test_end_of_stream() -> None:
    server = ServerConnection()
    server.receive_data(b"")
    assert server.next_event() == ConnectionClosed()
    server = ServerConnection()
    server.receive_data(b"A1 NO")
    server.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        server.next_event()


def test_send_raw_for_fault_injection() -> None:
    server = ServerConnection()
    server.send_raw(b"* garbage\r\n")
    assert server.data_to_send() == b"* garbage\r\n"


def run(client: ClientConnection, server: ServerConnection) -> tuple[list, list]:
    """Shuttle bytes both ways until nothing moves; return (client events, server events)."""
    client_events: list = []
    server_events: list = []
    while True:
        moved = False
        data = client.data_to_send()
        if data:
            server.receive_data(data)
            moved = True
        server_events += drain(server)
        data = server.data_to_send()
        if data:
            client.receive_data(data)
            moved = True
        client_events += drain(client)
        if not moved:
            return client_events, server_events


def test_client_and_server_in_memory() -> None:
    client = ClientConnection(literal_plus=False)
    server = ServerConnection()
    server.send(
        StatusResponse(None, Status.OK, None, "The Microsoft Exchange IMAP4 service is ready.")
    )
    t_auth = client.send(Authenticate("XOAUTH2"))
    events, requests = run(client, server)
    assert isinstance(events[0], Greeting)
    assert requests == [CommandReceived(t_auth, Authenticate("XOAUTH2"))]
    server.send(ContinuationRequest(None))
    events, _ = run(client, server)
    assert events == [ContinuationRequest(None)]
    client.send(AuthenticateResponse(xoauth2("a@b.c", Secret("tok"))))
    _, requests = run(client, server)
    assert parse_xoauth2(requests[0].data.reveal()).user == "a@b.c"
    server.send(StatusResponse(t_auth, Status.OK, None, "AUTHENTICATE completed."))
    events, _ = run(client, server)
    assert events[0].ok
    t_append = client.send(Append("INBOX", MESSAGE))
    t_noop = client.send(Noop())
    events, requests = run(client, server)
    assert isinstance(requests[0], AppendStart)
    server.send(ContinuationRequest("Ready for additional command text."))
    events, requests = run(client, server)
    assert [type(r) for r in requests] == [AppendChunk, AppendEnd, CommandReceived]
    assert b"".join(bytes(r.data) for r in requests if isinstance(r, AppendChunk)) == MESSAGE
    server.send(ExistsResponse(1))
    server.send(FetchResponse(1, uid=7, flags=("\\Recent",)))
    server.send(StatusResponse(t_noop, Status.OK, None, "NOOP completed."))
    server.send(StatusResponse(t_append, Status.OK, None, "APPEND completed."))
    t_idle = client.send(Idle())
    events, requests = run(client, server)
    assert events[0] == ExistsResponse(1)
    assert events[1] == FetchResponse(1, uid=7, flags=("\\Recent",))
    done = [e for e in events if isinstance(e, CommandDone)]
    assert [d.tag for d in done] == [t_noop, t_append]
    assert requests == [CommandReceived(t_idle, Idle())]
    server.send(ContinuationRequest("IDLE accepted, awaiting DONE command."))
    run(client, server)
    client.send(Done())
    _, requests = run(client, server)
    assert requests == [IdleDone(t_idle)]


def test_large_fetch_body_is_sent_without_copying() -> None:
    body = b"m" * 100_000
    server = ServerConnection()
    server.send(FetchResponse(3, uid=9, flags=("\\Seen",), bodies=(BodyData("", None, body),)))
    pieces = server.pieces_to_send()
    assert pieces[1] is body
    assert (
        b"".join(pieces) == b"* 3 FETCH (UID 9 FLAGS (\\Seen) BODY[] {100000}\r\n" + body + b")\r\n"
    )
    assert server.data_to_send() == b""


def test_streamed_fetch_from_the_server_reaches_a_client() -> None:
    body = b"Subject: big\r\n\r\n" + b"q" * 200_000
    server = ServerConnection()
    server.send(StatusResponse(None, Status.OK, None, "ready"))
    server.send_fetch_start(FetchResponse(4, uid=44), BodyData("", None), len(body))
    with pytest.raises(LocalProtocolError):
        server.send(ExistsResponse(1))
    server.send_body_data(body[:1000])
    with pytest.raises(LocalProtocolError):
        server.send_fetch_end()
    server.send_body_data(body[1000:])
    with pytest.raises(LocalProtocolError):
        server.send_body_data(b"x")
    server.send_fetch_end(FetchResponse(4, flags=("\\Seen",)))
    wire = server.data_to_send()
    assert wire.endswith(b"q FLAGS (\\Seen))\r\n")
    client = ClientConnection()
    client.receive_data(wire)
    events = drain(client)
    assert isinstance(events[0], Greeting)
    assert events[1].uid == 44
    assert b"".join(bytes(e.data) for e in events[2:-1]) == body
    assert events[-1].fetch.flags == ("\\Seen",)
    assert events[-1].fetch.body().size == len(body)


def test_two_streamed_bodies_in_one_fetch_reach_a_client() -> None:
    whole = b"Subject: two\r\n\r\n" + b"w" * 100_000
    text = whole.split(b"\r\n\r\n", 1)[1]
    server = ServerConnection()
    server.send(StatusResponse(None, Status.OK, None, "ready"))
    server.send_fetch_start(FetchResponse(2), BodyData("", None), len(whole))
    with pytest.raises(LocalProtocolError):  # the first body is not complete
        server.send_fetch_next(FetchResponse(2, uid=7), BodyData("TEXT", None), len(text))
    server.send_body_data(whole)
    server.send_fetch_next(FetchResponse(2, uid=7), BodyData("TEXT", None), len(text))
    server.send_body_data(text)
    server.send_fetch_end(FetchResponse(2, flags=("\\Seen",)))
    wire = server.data_to_send()
    assert b" UID 7 BODY[TEXT] {100000}\r\n" in wire
    client = ClientConnection()
    client.receive_data(wire)
    events = drain(client)
    starts = [e for e in events if isinstance(e, FetchStart)]
    assert [s.body.section for s in starts] == ["", "TEXT"]
    chunks = b"".join(bytes(e.data) for e in events if isinstance(e, BodyChunk))
    assert chunks == whole + text
    end = events[-1].fetch
    assert (end.uid, end.flags) == (7, ("\\Seen",))
    assert [b.size for b in end.bodies] == [len(whole), len(text)]


def test_append_with_the_mailbox_in_a_literal() -> None:
    server = ServerConnection(max_buffered_literal=100)
    server.receive_data(b"A1 APPEND {8}\r\n")
    assert drain(server) == []
    assert server.data_to_send() == b"+ Ready for additional command text.\r\n"
    server.receive_data(b'Say "hi" (\\Draft) {1000+}\r\n' + b"m" * 1000 + b"\r\n")
    start, *chunks, end = drain(server)
    assert start == AppendStart("A1", Append('Say "hi"', None, ("\\Draft",), None, 1000), False)
    assert sum(len(c.data) for c in chunks) == 1000
    assert end == AppendEnd("A1", start.command)


def test_bad_command_reasons_never_quote_credentials() -> None:
    server = ServerConnection()
    server.receive_data(b"A1 LOGIN user hunter2secret extra\r\nA2 AUTHENTICATE PLAIN\r\n")
    server.receive_data(b"hunter2secret!!\r\n")
    bad_login, _, bad_answer = drain(server)
    assert isinstance(bad_login, BadCommand)
    assert isinstance(bad_answer, BadCommand)
    for event in (bad_login, bad_answer):
        assert "hunter2" not in event.reason
        assert "hunter2" not in repr(event)
