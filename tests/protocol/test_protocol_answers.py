"""protocol.answers reads Exchange's throttling and BYE texts (the exact strings of
/work/shared/spec/exchange-online.md), as they arrive on the wire, whole or byte by byte."""

from __future__ import annotations

import pytest

from exoimap.errors import ConnectionLost, SessionInvalidated, Throttled
from exoimap.protocol import (
    NEED_DATA,
    ClientConnection,
    CommandDone,
    Noop,
    StatusResponse,
    connection_lost_for,
    error_for,
    session_invalidated_reason,
    throttle_backoff,
)


def _answer(line: bytes, bytewise: bool) -> StatusResponse:
    conn = ClientConnection()
    conn.receive_data(b"* OK The Microsoft Exchange IMAP4 service is ready.\r\n")
    conn.next_event()
    tag = conn.send(Noop())
    data = line.replace(b"TAG", tag.encode())
    for piece in [data[i : i + 1] for i in range(len(data))] if bytewise else [data]:
        conn.receive_data(piece)
    event = conn.next_event()
    assert event is not NEED_DATA
    response = event.response if isinstance(event, CommandDone) else event
    assert isinstance(response, StatusResponse)
    return response


@pytest.mark.parametrize("bytewise", [False, True])
@pytest.mark.parametrize(
    ("line", "seconds"),
    [
        (b"TAG NO Request is throttled. Suggested Backoff Time: 299785 milliseconds\r\n", 299.785),
        (b"TAG BAD Request is throttled. Suggested Backoff Time: 500 milliseconds\r\n", 0.5),
        (b"* NO Request is throttled. Suggested Backoff Time: 300000 milliseconds\r\n", 300.0),
        (b"TAG NO request is THROTTLED.  Suggested Backoff Time:1 milliseconds\r\n", 0.001),
    ],
)
def test_throttling_answers(line: bytes, seconds: float, bytewise: bool) -> None:
    response = _answer(line, bytewise)
    assert throttle_backoff(response) == seconds
    error = error_for(response)
    assert isinstance(error, Throttled)
    assert error.backoff == seconds


@pytest.mark.parametrize(
    "line",
    [
        b"TAG OK Request is throttled. Suggested Backoff Time: 5 milliseconds\r\n",
        b"TAG NO Suggested Backoff Time: 5 milliseconds\r\n",
        b"TAG NO Command Error. 12\r\n",
        b"TAG NO Server Unavailable. 15\r\n",
        b"* OK Session invalidated - x\r\n",  # invalidation means something only in a BYE
    ],
)
def test_answers_that_mean_nothing(line: bytes) -> None:
    response = _answer(line, bytewise=False)
    assert throttle_backoff(response) is None
    assert session_invalidated_reason(response) is None
    assert error_for(response) is None


@pytest.mark.parametrize("bytewise", [False, True])
@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"* BYE Session invalidated - AccessTokenExpired\r\n", "AccessTokenExpired"),
        (b"* BYE Session invalidated - AccountDisabled \r\n", "AccountDisabled"),
        (b"* BYE session invalidated -\r\n", "unknown"),
    ],
)
def test_session_invalidated(line: bytes, reason: str, bytewise: bool) -> None:
    response = _answer(line, bytewise)
    assert session_invalidated_reason(response) == reason
    error = error_for(response)
    assert isinstance(error, SessionInvalidated)
    assert error.reason == reason
    assert isinstance(connection_lost_for(response), SessionInvalidated)


@pytest.mark.parametrize(
    "line",
    [
        b"* BYE Connection is closed. 13\r\n",
        b"* BYE Connection closed. 14\r\n",
        b"* BYE Microsoft Exchange Server IMAP4 server signing off.\r\n",
    ],
)
def test_other_byes_are_a_lost_connection(line: bytes) -> None:
    response = _answer(line, bytewise=False)
    assert session_invalidated_reason(response) is None
    error = error_for(response)
    assert type(error) is ConnectionLost
    assert response.text in str(error)
