"""SEARCH for the sandbox server: RFC 3501 keys evaluated over the folder's messages."""

from __future__ import annotations

import datetime as _dt
import email.utils
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from exoimap.errors import RemoteProtocolError
from exoimap.protocol.dates import parse_date
from exoimap.sandbox.exchange.mime import parse_message

__all__ = ["SearchItem", "search"]

Key = str | tuple["Key", ...]


@dataclass(slots=True)
class SearchItem:
    seq: int
    uid: int
    flags: frozenset[str]
    internal_date: _dt.datetime
    data: bytes


def _in_set(text: str, number: int, largest: int) -> bool:
    for part in text.split(","):
        start_text, _, end_text = part.partition(":")
        try:
            start = largest if start_text == "*" else int(start_text)
            end = start if not end_text else (largest if end_text == "*" else int(end_text))
        except ValueError as exc:
            raise RemoteProtocolError(f"invalid message set {text!r}") from exc
        if min(start, end) <= number <= max(start, end):
            return True
    return False


def _is_set(text: str) -> bool:
    return bool(text) and all(c.isdigit() or c in ":,*" for c in text)


def _header(item: SearchItem, name: str) -> str:
    part = parse_message(item.data[:65536])
    values = [v for k, v in part.fields if k.lower() == name.lower()]
    decoded = []
    for value in values:
        try:
            decoded.append(str(email.header.make_header(email.header.decode_header(value))))
        except (ValueError, LookupError, UnicodeError):
            decoded.append(value)
    return "\n".join(decoded)


def _sent_date(item: SearchItem) -> _dt.date | None:
    value = _header(item, "Date")
    try:
        return email.utils.parsedate_to_datetime(value).date()
    except (TypeError, ValueError, IndexError):
        return None


Test = Callable[[SearchItem], bool]


class _Parser:
    def __init__(self, keys: Sequence[Key], max_uid: int, max_seq: int) -> None:
        self.keys = list(keys)
        self.pos = 0
        self.max_uid = max_uid
        self.max_seq = max_seq

    def take(self) -> Key:
        if self.pos >= len(self.keys):
            raise RemoteProtocolError("search criteria end too early")
        key = self.keys[self.pos]
        self.pos += 1
        return key

    def text(self) -> str:
        key = self.take()
        if not isinstance(key, str):
            raise RemoteProtocolError("a search argument must be a string")
        return key

    def all(self) -> Test:
        tests = []
        while self.pos < len(self.keys):
            tests.append(self.one())
        return lambda item: all(t(item) for t in tests)

    def one(self) -> Test:
        key = self.take()
        if isinstance(key, tuple):
            return _Parser(key, self.max_uid, self.max_seq).all()
        family = _KEY_FAMILIES.get(key.upper())
        if family is not None:
            return family(self, key.upper())
        if _is_set(key):
            return lambda item: _in_set(key, item.seq, self.max_seq)
        raise RemoteProtocolError(f"unknown search key {key!r}")


# --- search keys, by family (RFC 3501 6.4.4) ----------------------------------------------
# Each family reads its arguments from the parser and returns the test for one key.

_FLAG_KEYS = {
    "ANSWERED": "\\Answered",
    "DELETED": "\\Deleted",
    "DRAFT": "\\Draft",
    "FLAGGED": "\\Flagged",
    "SEEN": "\\Seen",
}


def _constant(parser: _Parser, name: str) -> Test:
    # no message is ever \Recent on Exchange, so NEW and RECENT find none and OLD all
    found = name in ("ALL", "OLD")
    return lambda item: found


def _flag(parser: _Parser, name: str) -> Test:
    if name in _FLAG_KEYS:
        flag = _FLAG_KEYS[name]
        return lambda item: flag in item.flags
    flag = _FLAG_KEYS[name[2:]]  # UNSEEN and the like
    return lambda item: flag not in item.flags


def _keyword(parser: _Parser, name: str) -> Test:
    word = parser.text()
    if name == "KEYWORD":
        return lambda item: word in item.flags
    return lambda item: word not in item.flags


def _not(parser: _Parser, name: str) -> Test:
    inner = parser.one()
    return lambda item: not inner(item)


def _or(parser: _Parser, name: str) -> Test:
    left, right = parser.one(), parser.one()
    return lambda item: left(item) or right(item)


def _uid(parser: _Parser, name: str) -> Test:
    spec, largest = parser.text(), parser.max_uid
    return lambda item: _in_set(spec, item.uid, largest)


def _internal_date(parser: _Parser, name: str) -> Test:
    day = parse_date(parser.text().strip('"'))
    compare = _compare(name)
    return lambda item: compare(item.internal_date.date(), day)


def _sent_date_key(parser: _Parser, name: str) -> Test:
    day = parse_date(parser.text().strip('"'))
    compare = _compare(name.removeprefix("SENT"))

    def sent(item: SearchItem) -> bool:
        date = _sent_date(item)
        return date is not None and compare(date, day)

    return sent


def _size(parser: _Parser, name: str) -> Test:
    try:
        size = int(parser.text())
    except ValueError as exc:
        raise RemoteProtocolError("LARGER/SMALLER need a number") from exc
    if name == "LARGER":
        return lambda item: len(item.data) > size
    return lambda item: len(item.data) < size


def _address_or_subject(parser: _Parser, name: str) -> Test:
    needle = parser.text().lower()
    field = name.capitalize() if name != "BCC" else "Bcc"
    return lambda item: needle in _header(item, field).lower()


def _header_key(parser: _Parser, name: str) -> Test:
    field, needle = parser.text(), parser.text().lower()
    return lambda item: needle in _header(item, field).lower()


def _text(parser: _Parser, name: str) -> Test:
    raw = parser.text().encode("utf-8").lower()
    if name == "BODY":
        return lambda item: raw in parse_message(item.data).body.lower()
    return lambda item: raw in item.data.lower()


_KEY_FAMILIES: dict[str, Callable[[_Parser, str], Test]] = {
    **dict.fromkeys(("ALL", "NEW", "RECENT", "OLD"), _constant),
    **dict.fromkeys(_FLAG_KEYS, _flag),
    **dict.fromkeys(("UN" + name for name in _FLAG_KEYS), _flag),
    **dict.fromkeys(("KEYWORD", "UNKEYWORD"), _keyword),
    "NOT": _not,
    "OR": _or,
    "UID": _uid,
    **dict.fromkeys(("BEFORE", "ON", "SINCE"), _internal_date),
    **dict.fromkeys(("SENTBEFORE", "SENTON", "SENTSINCE"), _sent_date_key),
    **dict.fromkeys(("LARGER", "SMALLER"), _size),
    **dict.fromkeys(("FROM", "TO", "CC", "BCC", "SUBJECT"), _address_or_subject),
    "HEADER": _header_key,
    **dict.fromkeys(("BODY", "TEXT"), _text),
}


def _compare(kind: str) -> Callable[[_dt.date, _dt.date], bool]:
    if kind == "BEFORE":
        return lambda a, b: a < b
    if kind == "ON":
        return lambda a, b: a == b
    return lambda a, b: a >= b


def search(items: Sequence[SearchItem], criteria: Sequence[Key]) -> list[SearchItem]:
    """The items matching ``criteria``; raises RemoteProtocolError on a malformed query."""
    max_uid = max((i.uid for i in items), default=0)
    test = _Parser(criteria, max_uid, len(items)).all()
    return [item for item in items if test(item)]
