"""IMAP dates as typed values, both ways: the RFC 3501 ``date-time`` of INTERNALDATE and
APPEND (``05-Mar-2024 10:00:00 +0100``) and the ``date`` of SEARCH (``5-Mar-2024``).

Parsing is strict about the shape and lenient only where servers differ: the day may be
one digit, two digits or a space and a digit, and month names are case-insensitive.
Anything else raises :class:`~exoimap.errors.RemoteProtocolError` (text that came from
the peer); formatting a naive datetime raises :class:`~exoimap.errors.LocalProtocolError`.

>>> when = parse_date_time(" 5-Mar-2024 10:00:00 +0100")
>>> when.isoformat()
'2024-03-05T10:00:00+01:00'
>>> format_date_time(when)
'05-Mar-2024 10:00:00 +0100'
>>> format_date(when.date()), parse_date("5-mar-2024")
('5-Mar-2024', datetime.date(2024, 3, 5))
"""

from __future__ import annotations

import datetime as _dt
import re

from exoimap.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["format_date", "format_date_time", "parse_date", "parse_date_time"]

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_DATE_TIME = re.compile(
    r" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-]\d\d[0-5]\d)", re.ASCII
)
_DATE = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})", re.ASCII)
# Parsed zones by their text: a mailbox's dates share a handful of zones.
_ZONES: dict[str, _dt.timezone] = {}
_DateTime = _dt.datetime  # a local name: this runs once per message in a backup's FETCH


def _month(name: str) -> int | None:
    return _MONTHS.get(name) or _MONTHS.get(name.title())


def _zone(text: str) -> _dt.timezone:
    """The zone of ``+hhmm``/``-hhmm`` (minutes already checked by the pattern)."""
    zone = _ZONES.get(text)
    if zone is None:
        offset = _dt.timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))
        if offset >= _dt.timedelta(hours=24):
            raise ValueError(text)
        zone = _dt.timezone(-offset if text[0] == "-" else offset)
        if len(_ZONES) < 256:
            _ZONES[text] = zone
    return zone


def parse_date_time(text: str) -> _dt.datetime:
    """An RFC 3501 ``date-time`` (without its quotes) as an aware datetime."""
    m = _DATE_TIME.fullmatch(text)
    if m is None:
        raise RemoteProtocolError(f"invalid IMAP date-time {text[:40]!r}")
    day, month_name, year, hour, minute, second, zone = m.groups()
    month = _month(month_name)
    try:
        if month is None:
            raise ValueError(month_name)
        return _DateTime(
            int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=_zone(zone)
        )
    except ValueError:
        raise RemoteProtocolError(f"invalid IMAP date-time {text[:40]!r}") from None


def format_date_time(when: _dt.datetime) -> str:
    """The ``date-time`` text of an aware datetime (seconds are whole; any fraction is
    dropped). The offset must be whole minutes, as IMAP cannot say more."""
    offset = when.utcoffset()
    if offset is None:
        raise LocalProtocolError("IMAP dates must be timezone-aware")
    seconds = int(offset.total_seconds())
    if seconds % 60 or offset.microseconds:
        raise LocalProtocolError(f"an IMAP date's offset must be whole minutes, not {offset}")
    minutes = abs(seconds) // 60
    sign = "-" if seconds < 0 else "+"
    return (
        f"{when.day:02d}-{_MONTH_NAMES[when.month - 1]}-{when.year:04d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


def parse_date(text: str) -> _dt.date:
    """A SEARCH ``date`` (``5-Mar-2024``, without quotes) as a date."""
    m = _DATE.fullmatch(text)
    month = None if m is None else _month(m.group(2))
    if m is None or month is None:
        raise RemoteProtocolError(f"invalid IMAP date {text[:40]!r}")
    try:
        return _dt.date(int(m.group(3)), month, int(m.group(1)))
    except ValueError:
        raise RemoteProtocolError(f"invalid IMAP date {text[:40]!r}") from None


def format_date(day: _dt.date) -> str:
    """The SEARCH ``date`` text of a date."""
    return f"{day.day}-{_MONTH_NAMES[day.month - 1]}-{day.year:04d}"
