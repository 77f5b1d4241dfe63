"""The console's search syntax, parsed into a :class:`Query` (no SQL here).

``from:alice to:bob subject:"quarterly report" folder:INBOX before:2026-01-01
after:2025-06-30 has:attachment invoice 2026*``: the words without a prefix are free text
(``*`` at the end of a word matches any ending; quotes keep words together as a phrase);
``before:`` and ``after:`` take ISO dates (UTC, ``before`` excludes its day, ``after``
excludes its own). An unknown prefix such as ``x:y`` is searched as free text.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field

from exoimap.errors import ExoimapError

__all__ = ["Query", "SearchSyntaxError", "parse_query"]

#: A token: ``name:"a phrase"``, ``name:word``, ``"a phrase"`` or ``word``.
_TOKEN = re.compile(r'(?:(?P<name>[A-Za-z]+):)?(?:"(?P<phrase>[^"]*)"?|(?P<word>\S+))')
_FIELDS = {"from": "senders", "to": "recipients", "cc": "copied", "subject": "subjects"}
#: The longest query text accepted (a search box, not a document).
MAX_QUERY = 1000


class SearchSyntaxError(ExoimapError):
    """A search the syntax does not allow (its message names the part)."""


@dataclass
class Query:
    """What a search asks for; every list is ANDed."""

    words: list[str] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    before: _dt.datetime | None = None
    after: _dt.datetime | None = None
    has_attachment: bool = False

    @property
    def has_text(self) -> bool:
        """Whether the full-text index is needed (anything but folder, date, attachment)."""
        return any((self.words, self.senders, self.recipients, self.copied, self.subjects))


def _day(name: str, value: str) -> _dt.datetime:
    try:
        day = _dt.date.fromisoformat(value)
    except ValueError:
        raise SearchSyntaxError(f"{name}: wants a date such as 2026-01-31, not {value!r}") from None
    return _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.UTC)


def parse_query(text: str) -> Query:
    """``text`` as a :class:`Query`; a malformed date or attachment filter is a
    :class:`SearchSyntaxError` naming it."""
    if len(text) > MAX_QUERY:
        raise SearchSyntaxError(f"the search is too long (at most {MAX_QUERY} characters)")
    query = Query()
    for match in _TOKEN.finditer(text):
        name = (match.group("name") or "").lower()
        value = match.group("phrase") if match.group("phrase") is not None else match["word"]
        value = (value or "").strip()
        if not value:
            continue
        if name in _FIELDS:
            getattr(query, _FIELDS[name]).append(value)
        elif name == "folder":
            query.folders.append(value)
        elif name == "before":
            query.before = _day(name, value)
        elif name == "after":
            query.after = _day(name, value) + _dt.timedelta(days=1)
        elif name == "has":
            if value.lower() != "attachment":
                raise SearchSyntaxError(f"has: knows only has:attachment, not has:{value}")
            query.has_attachment = True
        else:
            query.words.append(f"{name}:{value}" if name else value)
    return query
