"""search_tree: SEARCH criteria tokens (as the server parser keeps them) become a tree."""

from __future__ import annotations

import doctest

import pytest

import exoimap.protocol.search
from exoimap.errors import RemoteProtocolError
from exoimap.protocol import (
    SearchAnd,
    SearchKeyword,
    SearchNot,
    SearchOr,
    parse_command_line,
    search_tree,
)


def test_docstring_example_runs() -> None:
    result = doctest.testmod(exoimap.protocol.search)
    assert result.attempted >= 2
    assert result.failed == 0


def test_tree_from_a_parsed_command() -> None:
    command = parse_command_line(
        b'A1 UID SEARCH CHARSET UTF-8 1:100 uid 5:* HEADER Message-ID "<a@b>" '
        b"OR (SEEN FLAGGED) NOT SINCE 1-Feb-2024 LARGER 1000 ALL\r\n"
    ).command
    assert search_tree(command.criteria) == SearchAnd(
        (
            SearchKeyword("SEQUENCE", ("1:100",)),
            SearchKeyword("UID", ("5:*",)),
            SearchKeyword("HEADER", ("Message-ID", "<a@b>")),
            SearchOr(
                SearchAnd((SearchKeyword("SEEN"), SearchKeyword("FLAGGED"))),
                SearchNot(SearchKeyword("SINCE", ("1-Feb-2024",))),
            ),
            SearchKeyword("LARGER", ("1000",)),
            SearchKeyword("ALL"),
        )
    )


@pytest.mark.parametrize(
    "criteria",
    [
        (),
        ("UID",),
        ("HEADER", "Subject"),
        ("NOT",),
        ("OR", "SEEN"),
        ("FROBNICATE",),
        ((),),
        ("SUBJECT", ("x",)),
        ("NOT",) * 100 + ("SEEN",),
    ],
)
def test_malformed_criteria(criteria) -> None:
    with pytest.raises(RemoteProtocolError):
        search_tree(criteria)
