"""mboxrd quoting, streamed: the same bytes whatever the chunk boundaries, and reversible."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import given
from hypothesis import strategies as st

from exoimap.app.mboxrd import MboxrdQuoter, envelope_sender, from_line

_UNQUOTE = re.compile(rb"^>(>*From )", re.MULTILINE)


def _quote(data: bytes, cuts: list[int]) -> bytes:
    quoter = MboxrdQuoter()
    out = []
    start = 0
    for cut in sorted(set(cuts)):
        out.append(quoter.feed(data[start:cut]))
        start = cut
    out.append(quoter.feed(data[start:]))
    out.append(quoter.finish())
    return b"".join(out)


def _reference(data: bytes) -> bytes:
    return re.sub(rb"^(>*From )", rb">\1", data, flags=re.MULTILINE)


TRICKY = (
    b"From: a@b\r\n\r\nFrom here\r\n>From there\r\n>>From x\r\nxFrom y\r\n"
    b"From\r\nFrom \r\n>>>>\r\n>Fro\r\nFrom"
)


def test_quotes_from_lines_and_only_them() -> None:
    assert _quote(TRICKY, []) == (
        b"From: a@b\r\n\r\n>From here\r\n>>From there\r\n>>>From x\r\nxFrom y\r\n"
        b"From\r\n>From \r\n>>>>\r\n>Fro\r\nFrom"
    )


def test_every_split_of_a_tricky_message_gives_the_same_bytes() -> None:
    whole = _quote(TRICKY, [])
    for cut in range(len(TRICKY) + 1):
        assert _quote(TRICKY, [cut]) == whole, cut
    assert _quote(TRICKY, list(range(len(TRICKY)))) == whole  # byte by byte


@given(
    st.lists(
        st.sampled_from([b"From ", b">", b"\n", b"\r\n", b"F", b"rom", b"x", b" "]), max_size=40
    ),
    st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
def test_streamed_quoting_matches_the_whole_and_unquotes_back(
    parts: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(parts)
    quoted = _quote(data, [c for c in cuts if c <= len(data)])
    assert quoted == _reference(data)
    assert _UNQUOTE.sub(rb"\1", quoted) == data


def test_ends_with_newline_is_tracked() -> None:
    quoter = MboxrdQuoter()
    quoter.feed(b"a\n")
    assert quoter.ends_with_newline
    quoter.feed(b"b")
    assert not quoter.ends_with_newline


def test_envelope_sender_takes_one_plain_return_path_only() -> None:
    assert (
        envelope_sender(b"Return-Path: <ada@example.com>\r\nFrom: x\r\n\r\n") == "ada@example.com"
    )
    assert envelope_sender(b"Return-Path: <>\r\n\r\n") == "MAILER-DAEMON"
    assert envelope_sender(b"From: x\r\n\r\nReturn-Path: <b@c.d>\r\n") == "MAILER-DAEMON"
    assert envelope_sender(b"Return-Path: <a b@c.d>\r\n\r\n") == "MAILER-DAEMON"
    assert envelope_sender(b"Return-Path: <a@b\x1b[31m>\r\n\r\n") == "MAILER-DAEMON"
    two = b"Return-Path: <a@b.c>\r\nReturn-Path: <d@e.f>\r\n\r\n"
    assert envelope_sender(two) == "MAILER-DAEMON"


def test_from_line_is_asctime_in_utc() -> None:
    when = dt.datetime(2024, 3, 5, 9, 4, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert from_line("a@b.c", when) == b"From a@b.c Tue Mar  5 07:04:07 2024\n"
