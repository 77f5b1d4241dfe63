"""protocol.headers: one Message-ID rule, the same whether a message comes whole or in
chunks of any size."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exoimap.protocol.headers import (
    HEADER_SCAN_LIMIT,
    HeaderCollector,
    header_block,
    header_end,
    header_field,
    header_fields,
    normalize_message_id,
    parse_message_id,
    split_header,
)

PAST_LIMIT = b"X-Filler: " + b"a" * HEADER_SCAN_LIMIT + b"\r\nMessage-ID: <late@x>\r\n\r\nbody"

CASES = [
    (b"Message-ID: <a@b>\r\n\r\nbody", "<a@b>"),
    (b"From: x\r\nMessage-Id:\r\n <folded@x>\r\nTo: y\r\n\r\n", "<folded@x>"),
    (b"From: x\r\nX-Message-ID: <no>\r\n\r\n", None),
    (b"From: x\r\n\r\nMessage-ID: <in-body>\r\n", None),
    (b"From: x\nmessage-id: <lf@x>\n\nbody", "<lf@x>"),
    (b"Subject: hi\r\nMESSAGE-ID: <up@x>", "<up@x>"),
    (b"Message-ID:   \r\n\r\n", None),
    (b"", None),
    (b"body without a header", None),
    (b"\r\nMessage-ID: <after-empty-header@x>\r\n", None),
    (b"Message-ID:  <  spaced @ x  >  \r\n\r\n", "<spaced@x>"),
    (b"Message-ID: (a comment <not@this>) <real@x> (trailing)\r\n\r\n", "<real@x>"),
    (b"Message-ID: bare@x\r\n\r\n", "<bare@x>"),
    (b"Message-ID : <obs-blank@x>\r\n\r\n", "<obs-blank@x>"),
    (b"Message-ID: <first@x>\r\nMessage-ID: <second@x>\r\n\r\n", "<first@x>"),
    (b"Message-ID: <long\r\n\t-folded\r\n  @x>\r\n\r\n", "<long-folded@x>"),
    (b"Message-ID: <unclosed@x\r\n\r\n", "<unclosed@x>"),
    (b"X: y\n\r\nMessage-ID: <after-mixed-blank@x>\r\n", None),
    (PAST_LIMIT, None),
]


def _ids(case: tuple[bytes, str | None]) -> str:
    return repr(case[0][:30])


@pytest.mark.parametrize(("data", "expected"), CASES, ids=[_ids(c) for c in CASES])
def test_message_id_whole(data: bytes, expected: str | None) -> None:
    assert parse_message_id(data) == expected


@pytest.mark.parametrize(("data", "expected"), CASES, ids=[_ids(c) for c in CASES])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 4096, HEADER_SCAN_LIMIT + 1])
@pytest.mark.parametrize("kind", [bytes, memoryview])
def test_message_id_in_chunks(
    data: bytes, expected: str | None, size: int, kind: type[bytes] | type[memoryview]
) -> None:
    collector = HeaderCollector()
    for i in range(0, len(data), size):
        collector.feed(kind(data[i : i + size]))
    assert collector.message_id() == expected


def test_collector_completes_at_the_empty_line_and_at_the_limit() -> None:
    collector = HeaderCollector()
    collector.feed(b"Message-ID: <a@b>\r\n\r")
    assert not collector.complete
    collector.feed(b"\n")
    assert collector.complete
    collector.feed(b"Message-ID: <ignored@x>\r\n")  # the body: no effect
    assert collector.message_id() == "<a@b>"
    big = HeaderCollector()
    big.feed(PAST_LIMIT[:HEADER_SCAN_LIMIT])
    assert big.complete
    assert big.message_id() is None


def test_message_id_is_cut_at_the_limit_the_same_way_everywhere() -> None:
    filler = b"X-Filler: " + b"a" * (HEADER_SCAN_LIMIT - 40) + b"\r\n"
    data = filler + b"Message-ID: <" + b"b" * 60 + b"@x>\r\n\r\n"
    cut = parse_message_id(data)
    assert cut is not None
    assert cut.startswith("<bbb")
    assert "@x" not in cut  # the id is cut where the limit falls
    assert parse_message_id(data[:HEADER_SCAN_LIMIT]) == cut


def test_split_header_and_fields() -> None:
    header, body = split_header(b"A: 1\r\nB:\r\n two\r\n\tlines\r\n\r\nbody\r\n\r\n")
    assert body == b"body\r\n\r\n"
    assert header_fields(header) == [("A", "1"), ("B", "two\tlines")]
    assert header_field(header, "b") == "two\tlines"
    assert header_field(header, "C") is None
    assert split_header(b"no end") == (b"no end", b"")
    assert split_header(b"\r\nbody") == (b"\r\n", b"body")
    assert split_header(b"A: 1\n\nb") == (b"A: 1\n\n", b"b")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("()", None),
        ("<>", None),
        ("<a@b>", "<a@b>"),
        (" <a@b> ", "<a@b>"),
        ("(x(nested)) <a@b>", "<a@b>"),
        ("(quoted \\) paren) <a@b>", "<a@b>"),
        ("a @ b (c)", "<a@b>"),
        ("<a@b> <c@d>", "<a@b>"),
    ],
)
def test_normalize_message_id(value: str | None, expected: str | None) -> None:
    assert normalize_message_id(value) == expected


_ID_TEXT = st.text(alphabet=st.sampled_from("abcXYZ019.-_$@ \t<>()"), min_size=0, max_size=30).map(
    str.strip
)
_NAME = st.sampled_from(["Message-ID", "message-id", "MESSAGE-Id", "Message-ID ", "X-Other"])
_FIELD = st.builds(
    lambda name, value, fold, eol: (
        name.encode() + b":" + (fold + value.encode() if fold else b" " + value.encode()) + eol
    ),
    _NAME,
    _ID_TEXT,
    st.sampled_from([b"", b"\r\n ", b"\r\n\t", b"\n  "]),
    st.sampled_from([b"\r\n", b"\n"]),
)


@given(
    fields=st.lists(_FIELD, max_size=6),
    ending=st.sampled_from([b"\r\n", b"\n", b""]),
    body=st.binary(max_size=40),
    cuts=st.lists(st.integers(min_value=1, max_value=50), max_size=20),
)
def test_whole_and_chunked_agree(
    fields: list[bytes], ending: bytes, body: bytes, cuts: list[int]
) -> None:
    data = b"".join(fields) + ending + body
    collector = HeaderCollector()
    pos = 0
    for cut in cuts:
        collector.feed(data[pos : pos + cut])
        pos += cut
    collector.feed(data[pos:])
    whole = parse_message_id(data)
    assert collector.message_id() == whole
    assert collector.header() == header_block(data)
    assert whole is None or (whole.startswith("<") and whole.endswith(">") and " " not in whole)


_NAMES = st.sampled_from(
    [b"Message-ID", b"message-id", b"MESSAGE-ID ", b"Message-Id\t", b"From", b"X-Message-ID",
     b" Message-ID", b"\tcontinued"]
)  # fmt: skip
_LINE = st.tuples(
    _NAMES,
    st.sampled_from([b":", b" :", b""]),
    st.binary(max_size=12).filter(lambda b: b"\n" not in b),
    st.sampled_from([b"\r\n", b"\n", b"\r\n ", b"\n\t"]),
)


@given(st.lists(_LINE, max_size=8))
def test_the_field_search_finds_what_the_field_list_has(lines: list[tuple[bytes, ...]]) -> None:
    """header_field searches one field (fast: a backup reads every Message-ID) and must
    agree with the full split into fields."""
    header = b"".join(b"".join(parts) for parts in lines)
    listed = next(
        (value for name, value in header_fields(header) if name.lower() == "message-id"), None
    )
    assert header_field(header, "Message-ID") == listed


# The definition header_end implements with plain finds: an empty line at the very start,
# or a line end followed by an optional CR and LF.
_EMPTY_LINE = re.compile(rb"(?:\A|\n)\r?\n")


@given(st.binary(max_size=30).map(lambda b: bytes(b"a\r\n "[x % 4] for x in b)), st.integers(0, 5))
def test_header_end_finds_the_first_empty_line(data: bytes, start: int) -> None:
    m = _EMPTY_LINE.search(data, start)
    assert header_end(data, start) == (-1 if m is None else m.end())
