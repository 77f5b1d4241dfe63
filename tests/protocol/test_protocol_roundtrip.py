"""Property tests: parse(serialize(x)) == x for every command and response type, through
the whole-message parsers and through the connections (fed byte by byte)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from exoimap.protocol import (
    ClientConnection,
    CommandReceived,
    ContinuationRequest,
    Idle,
    Noop,
    ServerConnection,
    StatusResponse,
    parse_command_line,
    parse_response_line,
    serialize_command,
    serialize_response,
)
from exoimap.protocol.serialize import WAIT

from .protocol_helpers import GREETING, drain, feed
from .protocol_strategies import commands, responses

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def wire(pieces) -> bytes:
    return b"".join(p for p in pieces if p is not WAIT)


@SETTINGS
@given(commands)
def test_command_round_trip(command) -> None:
    data = wire(serialize_command("T1", command))
    parsed = parse_command_line(data)
    assert parsed.tag == "T1"
    assert parsed.command == command


@SETTINGS
@given(commands)
def test_command_round_trip_through_server_connection(command) -> None:
    server = ServerConnection(max_buffered_literal=1 << 20)
    data = wire(serialize_command("T1", command, literal_plus_max=1 << 30))
    events = feed(server, data, bytewise=len(data) < 300)
    if events and type(events[0]).__name__ == "AppendStart":
        start, *chunks, end = events
        assert start.command.mailbox == command.mailbox
        assert start.command.size == len(command.message)
        assert b"".join(bytes(ch.data) for ch in chunks) == command.message
        assert end.tag == "T1"
        return
    assert events == [CommandReceived("T1", command)]


@SETTINGS
@given(responses)
def test_response_round_trip(response) -> None:
    data = serialize_response(response)
    assert parse_response_line(data) == response


@SETTINGS
@given(responses)
def test_response_round_trip_through_client_connection(response) -> None:
    client = ClientConnection(stream_threshold=None)
    client.receive_data(GREETING)
    drain(client)
    if isinstance(response, ContinuationRequest):
        client.send(Idle())
    if isinstance(response, StatusResponse) and response.tag is not None:
        tag = client.send(Noop())
        response = StatusResponse(tag, response.status, response.code, response.text)
    data = serialize_response(response)
    (event,) = feed(client, data, bytewise=len(data) < 300)
    if isinstance(response, StatusResponse) and response.tag is not None:
        assert event.response == response
    else:
        assert event == response
