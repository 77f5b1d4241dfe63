"""SEARCH criteria: the flat tokens of :class:`~exoimap.protocol.commands.Search` as a tree.

The server parser keeps a SEARCH's criteria as written (tokens and parenthesised groups);
:func:`search_tree` gives them structure, knowing how many arguments each key takes
(RFC 3501 section 6.4.4), so a server (the sandbox) can evaluate them:

>>> tree = search_tree(("OR", "SEEN", ("UID", "5:*"), "NOT", "DELETED"))
>>> tree == SearchAnd((
...     SearchOr(SearchKeyword("SEEN"), SearchAnd((SearchKeyword("UID", ("5:*",)),))),
...     SearchNot(SearchKeyword("DELETED")),
... ))
True

A bare sequence set becomes ``SearchKeyword("SEQUENCE", (set,))``. Malformed criteria raise
:class:`~exoimap.errors.RemoteProtocolError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from exoimap.errors import RemoteProtocolError
from exoimap.protocol.commands import SearchKey
from exoimap.protocol.values import value_class

__all__ = ["SearchAnd", "SearchKeyword", "SearchNode", "SearchNot", "SearchOr", "search_tree"]

_NO_ARGUMENT = frozenset(
    [
        "ALL",
        "ANSWERED",
        "DELETED",
        "DRAFT",
        "FLAGGED",
        "NEW",
        "OLD",
        "RECENT",
        "SEEN",
        "UNANSWERED",
        "UNDELETED",
        "UNDRAFT",
        "UNFLAGGED",
        "UNSEEN",
    ]
)
_ONE_ARGUMENT = frozenset(
    [
        "BCC",
        "BEFORE",
        "BODY",
        "CC",
        "FROM",
        "KEYWORD",
        "LARGER",
        "MODSEQ",
        "ON",
        "SENTBEFORE",
        "SENTON",
        "SENTSINCE",
        "SINCE",
        "SMALLER",
        "SUBJECT",
        "TEXT",
        "TO",
        "UID",
        "UNKEYWORD",
        "OLDER",
        "YOUNGER",
    ]
)
_SEQUENCE = re.compile(r"[0-9*:,]+\Z")
_MAX_DEPTH = 64


@value_class
class SearchKeyword:
    """One search key with its arguments, e.g. ``("UID", ("5:*",))``; the name is upper
    case, arguments as sent."""

    name: str
    args: tuple[str, ...] = ()


@value_class
class SearchNot:
    term: SearchNode


@value_class
class SearchOr:
    left: SearchNode
    right: SearchNode


@value_class
class SearchAnd:
    """All of ``terms`` (the top level, and each parenthesised group)."""

    terms: tuple[SearchNode, ...]


SearchNode = SearchKeyword | SearchNot | SearchOr | SearchAnd


def _arg(tokens: Iterator[SearchKey], key: str) -> str:
    token = next(tokens, None)
    if not isinstance(token, str):
        raise RemoteProtocolError(f"SEARCH {key} needs an argument")
    return token


def _node(token: SearchKey, tokens: Iterator[SearchKey], depth: int) -> SearchNode:
    if depth > _MAX_DEPTH:
        raise RemoteProtocolError("SEARCH criteria nested too deeply")
    if isinstance(token, tuple):
        return _and(token, depth + 1)
    key = token.upper()
    if key in _NO_ARGUMENT:
        return SearchKeyword(key)
    if key in _ONE_ARGUMENT:
        return SearchKeyword(key, (_arg(tokens, key),))
    if key == "HEADER":
        return SearchKeyword(key, (_arg(tokens, key), _arg(tokens, key)))
    if key in ("NOT", "OR"):
        first = next(tokens, None)
        if first is None:
            raise RemoteProtocolError(f"SEARCH {key} needs a search key")
        left = _node(first, tokens, depth + 1)
        if key == "NOT":
            return SearchNot(left)
        second = next(tokens, None)
        if second is None:
            raise RemoteProtocolError("SEARCH OR needs two search keys")
        return SearchOr(left, _node(second, tokens, depth + 1))
    if _SEQUENCE.match(token):
        return SearchKeyword("SEQUENCE", (token,))
    raise RemoteProtocolError(f"unknown SEARCH key {token[:40]!r}")


def _and(keys: tuple[SearchKey, ...], depth: int) -> SearchAnd:
    tokens = iter(keys)
    terms = [_node(token, tokens, depth) for token in tokens]
    if not terms:
        raise RemoteProtocolError("empty SEARCH criteria")
    return SearchAnd(tuple(terms))


def search_tree(criteria: tuple[SearchKey, ...]) -> SearchAnd:
    """The criteria of a SEARCH command as a tree (an AND of the top-level keys)."""
    return _and(criteria, 0)
