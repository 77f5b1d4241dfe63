"""Property tests: parse(serialize(x)) == x for every command and response type, through
the whole-message parsers and through the connections (fed byte by byte)."""

from __future__ import annotations

import dataclasses
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exoimap.protocol import (
    BodyChunk,
    ClientConnection,
    CommandReceived,
    ContinuationRequest,
    FetchEnd,
    FetchResponse,
    FetchStart,
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
from .protocol_strategies import commands, fetch_responses, responses

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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


@SETTINGS
@given(fetch_responses, st.integers(0, 40), st.lists(st.integers(1, 400), max_size=5))
def test_streamed_fetch_reassembles_to_the_whole_response(response, threshold, cuts) -> None:
    """Whatever the threshold and the piece boundaries, FetchStart/BodyChunk/FetchEnd carry
    exactly what the whole response holds."""
    data = serialize_response(response)
    client = ClientConnection(stream_threshold=threshold)
    client.receive_data(GREETING)
    drain(client)
    events = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in itertools.pairwise(points):
        client.receive_data(data[a:b])
        events += drain(client)
    last = events[-1]
    if isinstance(last, FetchResponse):
        assert events == [response]
        return
    assert isinstance(last, FetchEnd)
    streamed: list[bytes] = []
    for event in events[:-1]:
        if isinstance(event, FetchStart):
            assert event.seq == response.seq
            assert event.body.size >= threshold
            streamed.append(b"")
        else:
            assert isinstance(event, BodyChunk)
            streamed[-1] += bytes(event.data)
    chunks = iter(streamed)
    bodies = tuple(
        dataclasses.replace(b, data=next(chunks), streamed=False) if b.streamed else b
        for b in last.fetch.bodies
    )
    assert dataclasses.replace(last.fetch, bodies=bodies) == response
    assert next(chunks, None) is None
