"""The search-key table of the sandbox server: it holds every RFC 3501 key, in any case,
each key reads exactly its own arguments, and the UN- keys find the complement."""

from __future__ import annotations

import datetime as dt

import pytest

from exoimap.errors import RemoteProtocolError
from exoimap.sandbox.exchange import search as search_module
from exoimap.sandbox.exchange.search import Key, SearchItem, search

# RFC 3501 6.4.4, each with arguments it accepts (NOT and OR take search keys)
ARGUMENTS: dict[str, tuple[str, ...]] = {
    "ALL": (), "ANSWERED": (), "DELETED": (), "DRAFT": (), "FLAGGED": (), "NEW": (),
    "OLD": (), "RECENT": (), "SEEN": (), "UNANSWERED": (), "UNDELETED": (), "UNDRAFT": (),
    "UNFLAGGED": (), "UNSEEN": (),
    "KEYWORD": ("$Work",), "UNKEYWORD": ("$Work",),
    "BCC": ("x",), "CC": ("x",), "FROM": ("x",), "SUBJECT": ("x",), "TO": ("x",),
    "BODY": ("x",), "TEXT": ("x",), "HEADER": ("Subject", "x"),
    "BEFORE": ("1-Jan-2020",), "ON": ("1-Jan-2020",), "SINCE": ("1-Jan-2020",),
    "SENTBEFORE": ("1-Jan-2020",), "SENTON": ("1-Jan-2020",), "SENTSINCE": ("1-Jan-2020",),
    "LARGER": ("10",), "SMALLER": ("10",), "UID": ("1:*",),
    "NOT": ("ALL",), "OR": ("ALL", "SEEN"),
}  # fmt: skip

WHEN = dt.datetime(2024, 3, 5, 10, tzinfo=dt.UTC)
ITEMS = [
    SearchItem(1, 10, frozenset({"\\Seen", "\\Flagged"}), WHEN, b"Subject: a\r\n\r\nx\r\n"),
    SearchItem(2, 11, frozenset({"\\Answered", "$Work"}), WHEN, b"Subject: b\r\n\r\ny\r\n"),
    SearchItem(3, 12, frozenset({"\\Deleted", "\\Draft"}), WHEN, b"Subject: c\r\n\r\nz\r\n"),
]


def uids(criteria: tuple[Key, ...]) -> list[int]:
    return [item.uid for item in search(ITEMS, criteria)]


def test_the_table_holds_every_rfc3501_key() -> None:
    assert set(search_module._KEY_FAMILIES) == set(ARGUMENTS)


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_each_key_reads_exactly_its_arguments(name: str) -> None:
    arguments = ARGUMENTS[name]
    alone = uids((name.lower(), *arguments))
    # a trailing 3 (a message number) is a key of its own, ANDed: it keeps only message 3
    assert uids((name.lower(), *arguments, "3")) == [uid for uid in alone if uid == 12]
    if arguments:
        with pytest.raises(RemoteProtocolError, match="end too early"):
            search(ITEMS, (name, *arguments[:-1]))


@pytest.mark.parametrize("flag_key", ["ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN"])
def test_un_keys_find_the_complement(flag_key: str) -> None:
    having, lacking = uids((flag_key,)), uids(("UN" + flag_key,))
    assert having
    assert sorted(having + lacking) == [10, 11, 12]


def test_keywords_and_constants() -> None:
    assert uids(("KEYWORD", "$Work")) == [11]
    assert uids(("UNKEYWORD", "$Work")) == [10, 12]
    assert uids(("NEW",)) == uids(("RECENT",)) == []  # nothing is \Recent on Exchange
    assert uids(("OLD",)) == uids(("ALL",)) == [10, 11, 12]


def test_unknown_keys_are_refused_with_the_key_as_sent() -> None:
    with pytest.raises(RemoteProtocolError, match="unknown search key 'unflagged2'"):
        search(ITEMS, ("unflagged2",))
