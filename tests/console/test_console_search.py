"""Search in the console: each role finds exactly what its scope allows (the scope is in
the SQL), headers only where content is not granted, paging, audit, bad queries; and
message lists served from the index agree with the archive."""

from __future__ import annotations

import asyncio
import re

from exoimap.console.archives import Mailboxes
from exoimap.store.archive import ArchiveStore
from exoimap.store.search import FolderMark, SearchIndex

from .conftest import PEOPLE, ConsoleWorld, TestClient

SEARCHERS = {"self", "restore_operator", "auditor"}


def _mailboxes_found(client: TestClient, query: str) -> tuple[int, list[str]]:
    response = client.get("/search", params={"q": query})
    assert response.status_code == 200, response.text[:300]
    total = int(re.search(r'id="hit-count">(\d+) messages', response.text)[1])  # type: ignore[index]
    rows = re.findall(r"<tr>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>", response.text)
    return total, sorted(rows)


def test_each_role_searches_exactly_its_scope(
    world: ConsoleWorld, signed_in: dict[str, TestClient]
) -> None:
    own, other = world.accounts["own"].lower(), world.accounts["other"].lower()
    # "quarterly" is in a subject (a header); "more" only in a message's text
    expected = {
        "self": {"quarterly": [own], "more": [own]},
        "restore_operator": {"quarterly": sorted([own, other]), "more": []},
        "auditor": {"quarterly": sorted([own, other]), "more": sorted([own, other])},
    }
    for person in PEOPLE:
        client = signed_in[person]
        if person not in SEARCHERS:
            assert client.get("/search", params={"q": "quarterly"}).status_code == 403
            continue
        for query, mailboxes in expected[person].items():
            assert _mailboxes_found(client, query) == (len(mailboxes), mailboxes), (person, query)
        # the mailbox outside every scope is never found, whatever is asked
        total, found = _mailboxes_found(client, "has:attachment")
        assert "dan@fabrikam.example" not in found
        assert total == len(found)


def test_results_link_to_messages_only_where_content_may_be_read(
    signed_in: dict[str, TestClient],
) -> None:
    auditor = signed_in["auditor"].get("/search", params={"q": "quarterly"}).text
    operator = signed_in["restore_operator"].get("/search", params={"q": "quarterly"}).text
    assert auditor.count("/message?") == 2
    assert "/message?" not in operator
    assert operator.count("/folder?") == 2


def test_hostile_headers_in_results_are_text(signed_in: dict[str, TestClient]) -> None:
    page = signed_in["auditor"].get("/search", params={"q": "from:attacker.example"}).text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt; invoice" in page
    assert "\u202e" not in page


def test_a_bad_query_is_one_clear_line(signed_in: dict[str, TestClient]) -> None:
    response = signed_in["self"].get("/search", params={"q": "after:last-week"})
    assert response.status_code == 400
    assert "after: wants a date such as 2026-01-31, not &#39;last-week&#39;" in response.text
    assert signed_in["self"].get("/search", params={"q": "x", "page": "0"}).status_code == 200


def test_paging_links_keep_the_query(signed_in: dict[str, TestClient]) -> None:
    page = signed_in["auditor"].get("/search", params={"q": "folder:inbox", "page": "1"}).text
    assert "8 messages, page 1 of 1" in page  # 4 in INBOX of each of the two in scope
    empty = signed_in["auditor"].get("/search", params={"q": "folder:inbox", "page": "2"}).text
    assert "8 messages, page 2 of 1" in empty
    assert 'href="/search?q=folder%3Ainbox&amp;page=1"' in empty


def test_every_search_is_audited_with_its_hit_count(
    world: ConsoleWorld, signed_in: dict[str, TestClient]
) -> None:
    signed_in["auditor"].get("/search", params={"q": "subject:quarterly"})
    records = world.records("console.search")
    mine = [r for r in records if r.data["query"] == "subject:quarterly"]
    assert mine, records
    assert mine[-1].data["hits"] == 2
    assert mine[-1].actor["console_user"] == world.users["auditor"][0]


def test_message_lists_from_the_index_match_the_archive(world: ConsoleWorld) -> None:
    indexed = Mailboxes(world.paths)
    from_files = Mailboxes(world.paths)
    from_files.search = SearchIndex(world.paths.data_dir / "no-index" / "index.sqlite")
    mailbox = indexed.find("other")
    assert mailbox is not None
    fast = asyncio.run(indexed.page(mailbox, "INBOX", 1))
    slow = asyncio.run(from_files.page(mailbox, "INBOX", 1))
    assert fast is not None
    assert slow is not None
    assert fast.total == slow.total == 4
    assert [(m.uid, m.subject, m.sender, m.size, m.date) for m in fast.messages] == [
        (m.uid, m.subject, m.sender, m.size, m.date) for m in slow.messages
    ]
    # and the fast page did come from the index: it holds the folder as the archive has it
    archive = ArchiveStore.open(mailbox.archive, create=False)
    try:
        state = asyncio.run(archive.folder_state("INBOX"))
    finally:
        asyncio.run(archive.close())
    mark = FolderMark(state.uidvalidity, state.uidnext, state.exists)
    assert indexed.search.folder_page("other", "INBOX", mark, page=1, size=50) is not None
