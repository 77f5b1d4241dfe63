"""The console's search: the person's query, inside the mailboxes their roles open to them.

The scope goes into the SQL of the query (:class:`~exoimap.store.search.SearchScope`):
headers are searched in every mailbox the person may browse, the message text only in
those whose content they may read, so a hit never tells what a role may not see. Each
result links to a page that checks the scope again by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from exoimap.console.policy import Action, DateRange, Principal, reaches
from exoimap.store.search import Hit, SearchIndex, SearchScope, parse_query

__all__ = ["RESULTS_PAGE", "SearchPage", "search"]

#: Hits per page.
RESULTS_PAGE = 50


@dataclass(frozen=True)
class SearchPage:
    text: str
    page: int
    total: int
    hits: list[Hit]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // RESULTS_PAGE))


def person_scope(
    principal: Principal,
    scopes: Mapping[str, tuple[str, ...]],
    ranges: Mapping[str, DateRange] | None = None,
) -> SearchScope:
    return SearchScope(
        content=reaches(principal, Action.READ_MESSAGE, scopes, ranges),
        metadata=reaches(principal, Action.BROWSE_MAILBOX, scopes, ranges),
    )


async def search(
    index: SearchIndex,
    principal: Principal,
    scopes: Mapping[str, tuple[str, ...]],
    text: str,
    page: int,
    *,
    ranges: Mapping[str, DateRange] | None = None,
) -> SearchPage:
    """Page ``page`` of what ``text`` finds for ``principal`` (a
    :class:`~exoimap.store.search.SearchSyntaxError` for a malformed query)."""
    query = parse_query(text)
    results = await run_in_threadpool(
        index.search, query, person_scope(principal, scopes, ranges), page=page, size=RESULTS_PAGE
    )
    return SearchPage(text, page, results.total, results.hits)
