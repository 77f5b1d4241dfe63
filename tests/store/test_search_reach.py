"""Date windows in the search index's scope: part of the SQL of a search (text, headers
only, no text), of a folder's listing, and of the check by id of one message."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from exoimap.store.memory import MemoryStore
from exoimap.store.search import Reach, SearchIndex, SearchScope, parse_query

from .test_search_index import DAY, _archive_and_index, _source

#: Days 0 and 2 of the corpus (INBOX), not day 5 (Projects).
FIRST_DAYS = Reach(
    ("bob@contoso.com",), after=DAY - dt.timedelta(hours=9), before=DAY + dt.timedelta(days=3)
)
#: Day 5 only (the invoice in Projects).
LATER = Reach(("*@contoso.com",), after=DAY + dt.timedelta(days=3))


@pytest.fixture
def index(tmp_path: Path) -> SearchIndex:
    found = SearchIndex(tmp_path / "search" / "index.sqlite")
    assert asyncio.run(_archive_and_index(_source(), tmp_path / "bob", found)) == 3
    return found


def _subjects(index: SearchIndex, text: str, scope: SearchScope) -> set[str]:
    return {h.subject for h in index.search(parse_query(text), scope, page=1, size=50).hits}


def test_a_window_bounds_text_search_header_search_and_filters(index: SearchIndex) -> None:
    everything = {"Quarterly report", "Café meeting", "Invoice 2026-17"}
    assert _subjects(index, "contoso", SearchScope(content=("*",))) == everything
    assert _subjects(index, "contoso", SearchScope(content=(FIRST_DAYS,))) == {
        "Quarterly report",
        "Café meeting",
    }
    assert _subjects(index, "contoso", SearchScope(content=(LATER,))) == {"Invoice 2026-17"}
    # headers only, and the content reach is excluded from it with its window
    assert _subjects(index, "invoice", SearchScope(metadata=(FIRST_DAYS,))) == set()
    assert _subjects(index, "invoice", SearchScope(metadata=(LATER,))) == {"Invoice 2026-17"}
    both = SearchScope(content=(FIRST_DAYS,), metadata=(LATER,))
    assert _subjects(index, "contoso", both) == everything
    assert _subjects(index, "revenue", both) == {"Quarterly report"}  # body: content only
    # no text at all (dates, attachment): the metadata branch carries the window too
    assert _subjects(index, "has:attachment", SearchScope(content=(FIRST_DAYS,))) == set()
    assert _subjects(index, "after:2026-03-09", SearchScope(content=(LATER,))) == {
        "Invoice 2026-17"
    }
    total = index.search(parse_query("after:2026-03-01"), both, page=1, size=1).total
    assert total == 3


def test_the_check_by_id_and_the_folder_listing_carry_the_window(index: SearchIndex) -> None:
    assert index.reachable("bob", "INBOX", 1, [FIRST_DAYS])
    assert index.reachable("bob", "INBOX", 2, [FIRST_DAYS])
    assert not index.reachable("bob", "Projects", 1, [FIRST_DAYS])  # day 5: outside
    assert index.reachable("bob", "Projects", 1, [FIRST_DAYS, LATER])
    assert not index.reachable("bob", "INBOX", 1, [LATER])
    assert not index.reachable("bob", "INBOX", 1, [Reach(("alice@contoso.com",))])
    assert not index.reachable("bob", "INBOX", 99, [Reach(("*",))])  # no such message
    assert not index.reachable("bob", "INBOX", 1, [])
    listed = index.folder_page("bob", "INBOX", None, page=1, size=10, within=[LATER])
    assert listed is not None
    assert (listed.total, listed.hits) == (0, [])
    listed = index.folder_page("bob", "INBOX", None, page=1, size=10, within=[FIRST_DAYS])
    assert listed is not None
    assert [h.uid for h in listed.hits] == [2, 1]
    assert listed.total == 2


def test_the_window_starts_and_ends_at_its_bounds(tmp_path: Path) -> None:
    """``after`` is included, ``before`` excluded, to the second."""
    source = MemoryStore()
    for hour in (0, 1, 2):
        source.add_message(
            "INBOX",
            f"Subject: at {hour}\r\n\r\nx\r\n".encode(),
            internal_date=DAY.replace(hour=hour),
        )
    found = SearchIndex(tmp_path / "index.sqlite")
    asyncio.run(_archive_and_index(source, tmp_path / "bob", found))
    middle = Reach(("*",), after=DAY.replace(hour=1), before=DAY.replace(hour=2))
    assert _subjects(found, "at", SearchScope(content=(middle,))) == {"at 1"}
    assert [found.reachable("bob", "INBOX", uid, [middle]) for uid in (1, 2, 3)] == [
        False,
        True,
        False,
    ]
