"""protocol.dates: typed IMAP dates both ways; malformed text is a RemoteProtocolError and
never anything else."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from exoimap.errors import LocalProtocolError, RemoteProtocolError
from exoimap.protocol import NEED_DATA, ClientConnection, FetchEnd, FetchResponse, FetchStart
from exoimap.protocol.dates import format_date, format_date_time, parse_date, parse_date_time
from tests.protocol.protocol_strategies import date_time


@given(date_time)
def test_date_time_round_trips(when: dt.datetime) -> None:
    back = parse_date_time(format_date_time(when))
    assert back == when
    assert back.utcoffset() == when.utcoffset()


@given(st.dates())
def test_date_round_trips(day: dt.date) -> None:
    assert parse_date(format_date(day)) == day


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" 6-May-2024 07:08:09 -0130", "2024-05-06T07:08:09-01:30"),
        ("06-May-2024 07:08:09 +0000", "2024-05-06T07:08:09+00:00"),
        ("6-may-2024 07:08:09 +2359", "2024-05-06T07:08:09+23:59"),
        ("29-Feb-2024 23:59:59 -1200", "2024-02-29T23:59:59-12:00"),
    ],
)
def test_parse_date_time_accepts_what_servers_send(text: str, expected: str) -> None:
    assert parse_date_time(text).isoformat() == expected


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "",
        "29-Feb-2023 00:00:00 +0000",  # no such day
        "06-Mai-2024 07:08:09 +0000",
        "06-May-2024 24:00:00 +0000",
        "06-May-2024 07:08:60 +0000",
        "06-May-2024 07:08:09 +0060",
        "06-May-2024 07:08:09 +2400",
        "06-May-2024 07:08:09 0000",
        "06-May-2024 07:08:09",
        "06-May-2024 07:08:09 +0000 ",
        "  6-May-2024 07:08:09 +0000",
        "06-May-24 07:08:09 +0000",
        "０6-May-2024 07:08:09 +0000",  # a fullwidth digit is not a digit here
    ],
)
def test_parse_date_time_rejects(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_date_time(text)


@given(st.text(max_size=40))
@example("31-Apr-2024 00:00:00 +0000")
@example("00-Jan-0000 00:00:00 +0000")
def test_garbage_is_a_remote_protocol_error(text: str) -> None:
    with contextlib.suppress(RemoteProtocolError):
        parse_date_time(text)
    with contextlib.suppress(RemoteProtocolError):
        parse_date(text)


@pytest.mark.parametrize("text", ["5-Mar-24", "5 Mar 2024", "31-Apr-2024", "5-Mar-2024 ", ""])
def test_parse_date_rejects(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_date(text)


def test_format_date_time_needs_what_imap_can_say() -> None:
    assert format_date_time(dt.datetime(2024, 3, 5, 10, 0, 0, 999_999, dt.UTC)) == (
        "05-Mar-2024 10:00:00 +0000"
    )
    with pytest.raises(LocalProtocolError, match="timezone-aware"):
        format_date_time(dt.datetime(2024, 3, 5))
    odd = dt.timezone(dt.timedelta(minutes=5, seconds=30))
    with pytest.raises(LocalProtocolError, match="whole minutes"):
        format_date_time(dt.datetime(2024, 3, 5, tzinfo=odd))


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("bytewise", [False, True])
def test_fetch_events_carry_datetimes(streamed: bool, bytewise: bool) -> None:
    conn = ClientConnection(stream_threshold=2 if streamed else 1 << 20)
    conn.receive_data(b"* OK ready\r\n")
    conn.next_event()
    data = b'* 1 FETCH (UID 7 INTERNALDATE " 5-Mar-2024 10:00:00 +0100" BODY[] {3}\r\nabc)\r\n'
    for piece in [data[i : i + 1] for i in range(len(data))] if bytewise else [data]:
        conn.receive_data(piece)
    events = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
    last = events[-1]
    fetch = last.fetch if isinstance(last, FetchEnd) else last
    assert isinstance(fetch, FetchResponse)
    assert fetch.internal_date == dt.datetime(2024, 3, 5, 9, tzinfo=dt.UTC)
    if streamed:
        assert isinstance(events[0], FetchStart)
        assert events[0].fetch.internal_date == fetch.internal_date


def test_a_malformed_internaldate_is_a_remote_protocol_error() -> None:
    conn = ClientConnection()
    conn.receive_data(b"* OK ready\r\n")
    conn.next_event()
    conn.receive_data(b'* 1 FETCH (UID 7 INTERNALDATE "31-Apr-2024 10:00:00 +0100")\r\n')
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
