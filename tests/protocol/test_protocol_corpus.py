"""Every real server line of the corpus parses through the client connection (whole and byte
by byte), and the Exchange lines serialise back byte for byte (the sandbox depends on it)."""

from __future__ import annotations

import pytest

from exoimap.protocol import (
    BareResponseCode,
    CommandDone,
    ContinuationRequest,
    CopyUidCode,
    Greeting,
    Idle,
    ListResponse,
    Noop,
    SequenceSet,
    ServerConnection,
    StatusData,
    StatusResponse,
    parse_response_line,
    serialize_response,
)
from exoimap.protocol.events import IdleDone
from exoimap.protocol.types import Status

from .protocol_helpers import GREETING, ClientConnection, drain, feed, load_corpus

CORPUS = load_corpus()
SERVER_LINES = [line for line in CORPUS if line.side == "S"]


def test_corpus_is_loaded_with_sources() -> None:
    assert len(SERVER_LINES) > 80
    assert all(line.source for line in CORPUS)
    assert sum(line.exact for line in CORPUS) > 60


@pytest.mark.parametrize("line", SERVER_LINES, ids=lambda x: x.data[:50].decode("utf-8", "replace"))
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_server_line_parses_in_a_session(line, bytewise: bool) -> None:
    conn = ClientConnection()
    conn.receive_data(GREETING)
    drain(conn)
    data = line.data
    if data.startswith(b"TAG "):
        tag = conn.send(Noop())
        data = tag.encode() + data[3:]
    if data.startswith(b"+"):
        conn.send(Idle())
    events = feed(conn, data + b"\r\n", bytewise=bytewise)
    assert len(events) == 1
    event = events[0]
    if line.data.startswith(b"TAG "):
        assert isinstance(event, CommandDone)
        assert event.command == Noop()
    elif line.data.startswith(b"+"):
        assert isinstance(event, ContinuationRequest)
    else:
        assert event == parse_response_line(line.data)


@pytest.mark.parametrize(
    "line",
    [x for x in SERVER_LINES if x.exact],
    ids=lambda x: x.data[:50].decode("utf-8", "replace"),
)
def test_exchange_line_is_reproduced_exactly(line) -> None:
    assert serialize_response(parse_response_line(line.data)) == line.data + b"\r\n"


def test_greeting_keeps_the_front_end_blob_in_the_text() -> None:
    conn = ClientConnection()
    events = feed(conn, SERVER_LINES[0].data + b"\r\n", bytewise=True)
    assert isinstance(events[0], Greeting)
    assert events[0].response.text.startswith("The Microsoft Exchange IMAP4 service is ready. [")
    assert events[0].response.code is None


def test_selected_corpus_values() -> None:
    by_text = {line.data: parse_response_line(line.data) for line in SERVER_LINES}
    assert by_text[b'* STATUS "Sent Items" (MESSAGES 3) '] == StatusData(
        "Sent Items", (("MESSAGES", 3),), trailing_space=True
    )
    assert by_text[b"[COPYUID 55 31 6]"] == BareResponseCode(
        CopyUidCode(55, SequenceSet.of(31), SequenceSet.of(6))
    )
    assert by_text[b"+"] == ContinuationRequest(None)
    assert by_text[b"+ "] == ContinuationRequest("")
    assert by_text[b'* LIST (\\HasNoChildren) "/" {8}\r\nSay "hi"'] == ListResponse(
        ("\\HasNoChildren",), "/", 'Say "hi"'
    )
    bye = by_text[b"* BYE Connection is closed. 13"]
    assert bye == StatusResponse(None, Status.BYE, None, "Connection is closed. 13")


def test_client_command_lines_of_the_corpus_parse_on_the_server() -> None:
    client_lines = [line.data for line in CORPUS if line.side == "C"]
    server = ServerConnection()
    server.receive_data(client_lines[0] + b"\r\n")
    first = drain(server)
    assert first[0].command.mechanism == "XOAUTH2"
    assert first[0].command.initial_response.reveal().startswith(b"user=test@contoso")
    server.send(StatusResponse("A01", Status.OK, None, "AUTHENTICATE completed."))
    assert server.data_to_send() == b"A01 OK AUTHENTICATE completed.\r\n"
    server.receive_data(client_lines[1] + b"\r\n")
    second = drain(server)
    assert second[0].command.initial_response is None
    server.send(ContinuationRequest(None))
    assert server.data_to_send() == b"+\r\n"
    server.receive_data(client_lines[2] + b"\r\n")
    (answer,) = drain(server)
    assert answer.tag == "A01"
    assert answer.data.reveal() == first[0].command.initial_response.reveal()
    assert not isinstance(answer, IdleDone)
