"""The FETCH item table of the sandbox server: every item expand_items lets through has a
renderer, UID is written once, bodies are not copied and the MIME tree is parsed at most
once, and only for the items that need it."""

from __future__ import annotations

import datetime as dt

import pytest

from exoimap.protocol.commands import BodySection
from exoimap.sandbox.exchange import fetch
from exoimap.sandbox.exchange.fetch import MessageView, expand_items, render_fetch_pieces

MESSAGE = (
    b"From: a@example.com\r\n"
    b"Subject: hi\r\n"
    b"Content-Type: multipart/mixed; boundary=B\r\n"
    b"\r\n"
    b"--B\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"one\r\n"
    b"--B--\r\n"
)
VIEW = MessageView(
    42, 5, frozenset({"\\Seen"}), dt.datetime(2024, 3, 5, 10, tzinfo=dt.UTC), MESSAGE
)


def test_every_simple_item_but_uid_has_a_renderer() -> None:
    # an item expand_items accepts but the table lacks would vanish from the response
    assert set(fetch._NAMED_ITEMS) == fetch._SIMPLE - {"UID"}


def test_uid_is_written_once_first_when_asked_first() -> None:
    items = expand_items(["FLAGS", "UID", "UID"])
    first = b"".join(render_fetch_pieces(VIEW, items, uid_first=True, estimate_size=False))
    assert first == b"* 5 FETCH (UID 42 FLAGS (\\Seen))\r\n"
    in_place = b"".join(render_fetch_pieces(VIEW, items, uid_first=False, estimate_size=False))
    assert in_place == b"* 5 FETCH (FLAGS (\\Seen) UID 42)\r\n"


def test_literals_are_separate_pieces_holding_the_stored_bytes() -> None:
    items = expand_items(["RFC822.SIZE", BodySection("", peek=True), "RFC822"])
    pieces = render_fetch_pieces(VIEW, items, uid_first=False, estimate_size=False)
    head = b"* 5 FETCH (RFC822.SIZE %d BODY[] {%d}\r\n" % (len(MESSAGE), len(MESSAGE))
    assert pieces == [head, MESSAGE, b" RFC822 {%d}\r\n" % len(MESSAGE), MESSAGE, b")\r\n"]
    assert pieces[1] is MESSAGE
    assert pieces[3] is MESSAGE


@pytest.mark.parametrize(
    ("items", "parses"),
    [
        (["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "RFC822"], 0),
        ([BodySection("", peek=True)], 0),
        (["ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822.HEADER", "RFC822.TEXT"], 1),
        ([BodySection("1", peek=True), BodySection("HEADER", peek=True), "ENVELOPE"], 1),
    ],
)
def test_the_mime_tree_is_parsed_only_when_needed(
    monkeypatch: pytest.MonkeyPatch, items: list[str | BodySection], parses: int
) -> None:
    calls: list[bytes] = []
    real = fetch.parse_message

    def counting(data: bytes, default_type: str = "text/plain") -> fetch.Part:
        calls.append(data)
        return real(data, default_type)

    monkeypatch.setattr(fetch, "parse_message", counting)
    render_fetch_pieces(VIEW, expand_items(items), uid_first=False, estimate_size=False)
    assert len(calls) == parses
