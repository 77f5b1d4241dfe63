"""ClientConnection: greeting, pipelining, literals held back, AUTHENTICATE, IDLE, streaming
FETCH bodies, caps and end of stream. Inputs are fed whole and byte by byte."""

from __future__ import annotations

import datetime as dt

import pytest

from exoimap.errors import LocalProtocolError, RemoteProtocolError
from exoimap.protocol import (
    NEED_DATA,
    Append,
    Authenticate,
    AuthenticateResponse,
    BodyChunk,
    BodyData,
    BodySection,
    Capability,
    ClientConnection,
    CommandDone,
    ConnectionClosed,
    ContinuationRequest,
    Done,
    Fetch,
    FetchEnd,
    FetchResponse,
    FetchStart,
    Greeting,
    Idle,
    Login,
    Noop,
    PermanentFlagsCode,
    SequenceSet,
    Status,
    StatusResponse,
)
from exoimap.protocol.sasl import xoauth2
from exoimap.secrets import Secret

from .protocol_helpers import GREETING, both_ways, client_events, drain, feed


def greeted(**kwargs) -> ClientConnection:
    conn = ClientConnection(**kwargs)
    conn.receive_data(GREETING)
    assert isinstance(conn.next_event(), Greeting)
    assert conn.next_event() is NEED_DATA
    return conn


@pytest.mark.parametrize("bytewise", [False, True])
def test_greeting_variants(bytewise: bool) -> None:
    for line, status in [
        (b"* OK ready\r\n", Status.OK),
        (b"* PREAUTH [CAPABILITY IMAP4rev1] logged in\r\n", Status.PREAUTH),
        (b"* BYE Connection closed. 14\r\n", Status.BYE),
    ]:
        (event,) = client_events(line, bytewise=bytewise, greet=False)
        assert isinstance(event, Greeting)
        assert event.response.status is status


def test_greeting_sets_capabilities_from_code() -> None:
    conn = ClientConnection()
    conn.receive_data(b"* OK [CAPABILITY IMAP4rev1 LITERAL+ IDLE] Dovecot ready.\r\n")
    drain(conn)
    assert conn.capabilities == {"IMAP4REV1", "LITERAL+", "IDLE"}


def test_anything_but_a_greeting_first_is_an_error() -> None:
    conn = ClientConnection()
    conn.receive_data(b"* 3 EXISTS\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_pipelined_commands_are_matched_by_tag() -> None:
    conn = greeted()
    t1 = conn.send(Noop())
    t2 = conn.send(Capability())
    t3 = conn.send(Fetch(SequenceSet.of(1, 2, 3), ("UID", "FLAGS"), uid=True))
    assert len({t1, t2, t3}) == 3
    assert conn.data_to_send() == (
        f"{t1} NOOP\r\n{t2} CAPABILITY\r\n{t3} UID FETCH 1:3 (UID FLAGS)\r\n".encode()
    )
    assert set(conn.in_flight) == {t1, t2, t3}
    replies = (
        f"* 1 FETCH (UID 7 FLAGS (\\Seen))\r\n{t3} OK FETCH completed.\r\n"
        f"* CAPABILITY IMAP4rev1 LITERAL+\r\n{t2} OK done\r\n{t1} NO [ALERT] nope\r\n"
    ).encode()
    events = feed(conn, replies, bytewise=True)
    assert events[0] == FetchResponse(1, uid=7, flags=("\\Seen",))
    assert isinstance(events[1], CommandDone)
    assert events[1].tag == t3
    assert events[1].command.uid is True
    assert events[3].tag == t2
    assert events[3].ok
    assert events[4].tag == t1
    assert events[4].status is Status.NO
    assert events[4].text == "nope"
    assert conn.in_flight == {}
    assert conn.capabilities == {"IMAP4REV1", "LITERAL+"}


def test_unknown_tag_is_a_remote_error() -> None:
    conn = greeted()
    conn.receive_data(b"Z9 OK what\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_synchronising_literal_waits_for_continuation() -> None:
    conn = greeted()
    tag = conn.send(Login("user", Secret('pa"ss\\word')))
    first = conn.data_to_send()
    assert first == f'{tag} LOGIN user "pa\\"ss\\\\word"\r\n'.encode()
    conn2 = greeted(literal_plus=False)
    tag = conn2.send(Append("INBOX", b"Subject: x\r\n\r\nbody", flags=("\\Seen",)))
    later = conn2.send(Noop())
    assert conn2.data_to_send() == f"{tag} APPEND INBOX (\\Seen) {{18}}\r\n".encode()
    assert conn2.data_to_send() == b""  # held back until "+"
    assert conn2.literal_held
    conn2.receive_data(b"+ Ready for additional command text.\r\n")
    assert conn2.next_event() is NEED_DATA  # consumed internally
    assert not conn2.literal_held
    assert conn2.data_to_send() == b"Subject: x\r\n\r\nbody\r\n" + f"{later} NOOP\r\n".encode()


def test_refused_literal_is_dropped_and_later_commands_go_out() -> None:
    conn = greeted(literal_plus=False)
    tag = conn.send(Append("INBOX", b"x" * 10))
    later = conn.send(Noop())
    conn.data_to_send()
    conn.receive_data(f"{tag} NO [TOOBIG] too big\r\n".encode())
    (done,) = drain(conn)
    assert done.tag == tag
    assert done.status is Status.NO
    assert conn.data_to_send() == f"{later} NOOP\r\n".encode()


def test_literal_plus_from_capability_sends_without_waiting() -> None:
    conn = greeted()
    conn.receive_data(b"* CAPABILITY IMAP4rev1 LITERAL+\r\n")
    drain(conn)
    tag = conn.send(Append("INBOX", b"hello"))
    assert conn.data_to_send() == f"{tag} APPEND INBOX {{5+}}\r\nhello\r\n".encode()


def test_literal_minus_limits_non_synchronising_size() -> None:
    conn = greeted()
    conn.receive_data(b"* CAPABILITY IMAP4rev1 LITERAL-\r\n")
    drain(conn)
    conn.send(Append("INBOX", b"a" * 4096))
    assert b"{4096+}" in conn.data_to_send()
    conn.send(Append("INBOX", b"a" * 4097))
    assert conn.data_to_send().endswith(b"{4097}\r\n")


def test_streamed_append_data() -> None:
    conn = greeted(literal_plus=False)
    tag = conn.send(Append("Sent Items", size=6, date=dt.datetime(2026, 11, 28, 6, tzinfo=dt.UTC)))
    with pytest.raises(LocalProtocolError):
        conn.send(Noop())
    conn.send_literal_data(b"abc")
    conn.send_literal_data(b"def")
    with pytest.raises(LocalProtocolError):
        conn.send_literal_data(b"g")
    assert conn.data_to_send() == (
        f'{tag} APPEND "Sent Items" "28-Nov-2026 06:00:00 +0000" {{6}}\r\n'.encode()
    )
    conn.receive_data(b"+\r\n")
    drain(conn)
    assert conn.data_to_send() == b"abcdef\r\n"


def test_authenticate_without_sasl_ir() -> None:
    conn = greeted()
    tag = conn.send(Authenticate("XOAUTH2"))
    assert conn.data_to_send() == f"{tag} AUTHENTICATE XOAUTH2\r\n".encode()
    conn.receive_data(b"+\r\n")
    assert conn.next_event() == ContinuationRequest(None)
    assert conn.send(AuthenticateResponse(xoauth2("a@b.c", Secret("tok")))) == tag
    assert conn.data_to_send() == b"dXNlcj1hQGIuYwFhdXRoPUJlYXJlciB0b2sBAQ==\r\n"
    conn.receive_data(f"{tag} OK AUTHENTICATE completed.\r\n".encode())
    assert conn.next_event().ok
    with pytest.raises(LocalProtocolError):
        conn.send(AuthenticateResponse(None))


def test_authenticate_cancel_and_sasl_ir() -> None:
    conn = greeted()
    tag = conn.send(Authenticate("PLAIN", Secret(b"\x00u\x00p")))
    assert conn.data_to_send() == f"{tag} AUTHENTICATE PLAIN AHUAcA==\r\n".encode()
    conn.receive_data(b"+ \r\n")
    assert conn.next_event() == ContinuationRequest("")
    conn.send(AuthenticateResponse(None))
    assert conn.data_to_send() == b"*\r\n"
    conn.receive_data(
        f"{tag} NO The AUTH protocol exchange was canceled by the client.\r\n".encode()
    )
    assert conn.next_event().status is Status.NO
    tag2 = conn.send(Authenticate("XOAUTH2", Secret(b"")))
    assert conn.data_to_send() == f"{tag2} AUTHENTICATE XOAUTH2 =\r\n".encode()
    assert tag2 != tag


def test_idle_and_done() -> None:
    conn = greeted()
    tag = conn.send(Idle())
    with pytest.raises(LocalProtocolError):
        conn.send(Idle())
    conn.receive_data(b"+ IDLE accepted, awaiting DONE command.\r\n* 4 EXISTS\r\n")
    events = drain(conn)
    assert events[0] == ContinuationRequest("IDLE accepted, awaiting DONE command.")
    assert conn.send(Done()) == tag
    assert conn.data_to_send() == f"{tag} IDLE\r\nDONE\r\n".encode()
    conn.receive_data(f"{tag} OK IDLE completed.\r\n".encode())
    assert conn.next_event().tag == tag
    with pytest.raises(LocalProtocolError):
        conn.send(Done())


def test_unexpected_continuation_is_an_error() -> None:
    conn = greeted()
    conn.receive_data(b"+ go ahead\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


BODY = b"From: a@b\r\nSubject: hi\r\n\r\n" + b"0123456789" * 20


@pytest.mark.parametrize("uid_first", [True, False])
def test_streamed_body_with_uid_before_or_after(uid_first: bool) -> None:
    if uid_first:
        line = b"* 3 FETCH (UID 42 FLAGS (\\Seen) BODY[] {%d}\r\n%s)\r\n" % (len(BODY), BODY)
    else:
        line = b"* 3 FETCH (BODY[] {%d}\r\n%s UID 42 FLAGS (\\Seen))\r\n" % (len(BODY), BODY)
    events = both_ways(line, stream_threshold=16)
    start, chunk, end = events
    assert isinstance(start, FetchStart)
    assert start.seq == 3
    assert start.body.size == len(BODY)
    assert start.uid == (42 if uid_first else None)
    assert isinstance(chunk, BodyChunk)
    assert chunk.data == BODY
    assert isinstance(end, FetchEnd)
    assert end.fetch.uid == 42
    assert end.fetch.flags == ("\\Seen",)
    assert end.fetch.body() == BodyData("", None, None, "BODY", True, len(BODY))


def test_small_body_is_delivered_whole_below_threshold() -> None:
    line = b"* 3 FETCH (UID 42 BODY[] {%d}\r\n%s)\r\n" % (len(BODY), BODY)
    (event,) = both_ways(line, stream_threshold=10_000)
    assert isinstance(event, FetchResponse)
    assert event.body().data == BODY
    (event,) = both_ways(line, stream_threshold=None)
    assert event.body().data == BODY


def test_two_streamed_sections_and_partial() -> None:
    head, text = b"H" * 40, b"T" * 50
    line = (
        b"* 1 FETCH (UID 5 BODY[HEADER] {40}\r\n"
        + head
        + b" BODY[TEXT]<0> {50}\r\n"
        + text
        + b")\r\n"
    )
    events = both_ways(line, stream_threshold=1)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["FetchStart", "BodyChunk", "FetchStart", "BodyChunk", "FetchEnd"]
    assert events[0].body.section == "HEADER"
    assert events[2].body.section == "TEXT"
    assert events[2].body.origin == 0
    assert events[2].fetch.bodies[0].section == "HEADER"
    assert events[1].data == head
    assert events[3].data == text


def test_big_literal_outside_a_body_is_buffered_or_refused() -> None:
    name = b"x" * 100
    line = b'* LIST () "/" {100}\r\n' + name + b"\r\n"
    (event,) = both_ways(line, stream_threshold=10)
    assert event.name == "x" * 100
    with pytest.raises(RemoteProtocolError):
        client_events(line, bytewise=False, stream_threshold=10, max_buffered_literal=50)


def test_line_cap_is_enforced_without_a_crlf() -> None:
    conn = greeted(max_line_length=100)
    conn.receive_data(b"* OK " + b"x" * 200)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_literal_cap_is_enforced_before_reading() -> None:
    conn = greeted(max_literal_size=1000)
    conn.receive_data(b"* 1 FETCH (BODY[] {1001}\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_response_size_cap() -> None:
    conn = greeted(max_response_size=100, stream_threshold=None)
    conn.receive_data(b"* 1 FETCH (BODY[] {200}\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_end_of_stream() -> None:
    conn = greeted()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    conn = greeted()
    conn.receive_data(b"* 1 FETCH (BODY[] {10}\r\nabc")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        drain(conn)
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"more")


def test_bye_is_recorded() -> None:
    conn = greeted()
    conn.receive_data(b"* BYE Session invalidated - AccessTokenExpired\r\n")
    (event,) = drain(conn)
    assert event == StatusResponse(
        None, Status.BYE, None, "Session invalidated - AccessTokenExpired"
    )
    assert conn.bye == event


def test_select_sequence_codes() -> None:
    conn = greeted()
    tag = conn.send(Noop())
    data = (
        b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)]"
        b" Permanent flags\r\n" + tag.encode() + b" OK [READ-WRITE] SELECT completed.\r\n"
    )
    events = feed(conn, data, bytewise=True)
    assert events[0].code == PermanentFlagsCode(
        ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$MDNSent")
    )
    assert events[1].code.name == "READ-WRITE"


def test_invalid_tag_prefix() -> None:
    with pytest.raises(LocalProtocolError):
        ClientConnection(tag_prefix="a b")


def test_fetch_needs_items_and_body_section() -> None:
    conn = greeted()
    with pytest.raises(LocalProtocolError):
        conn.send(Fetch(SequenceSet.of(1), ()))
    tag = conn.send(
        Fetch(
            SequenceSet.of(1),
            (BodySection("HEADER.FIELDS (MESSAGE-ID)", peek=True, partial=(0, 100)),),
        )
    )
    assert conn.data_to_send() == (
        f"{tag} FETCH 1 (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]<0.100>)\r\n".encode()
    )


def test_large_append_message_is_queued_without_copying() -> None:
    message = b"z" * 50_000
    conn = greeted(literal_plus=True)
    tag = conn.send(Append("INBOX", message))
    pieces = conn.pieces_to_send()
    assert pieces[0] == f"{tag} APPEND INBOX {{50000+}}\r\n".encode()
    assert pieces[1] is message
    assert pieces[2] == b"\r\n"


def test_no_other_commands_during_authenticate_or_idle() -> None:
    conn = greeted()
    tag = conn.send(Authenticate("XOAUTH2"))
    with pytest.raises(LocalProtocolError):
        conn.send(Noop())
    conn.receive_data(f"{tag} NO AUTHENTICATE failed.\r\n".encode())
    drain(conn)
    idle = conn.send(Idle())
    with pytest.raises(LocalProtocolError):
        conn.send(Capability())
    conn.send(Done())
    conn.receive_data(f"{idle} OK IDLE completed.\r\n".encode())
    drain(conn)
    assert conn.send(Noop()).startswith("A")
