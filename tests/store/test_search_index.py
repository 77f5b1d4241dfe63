"""The search index over real archives: what ``sync``'s catch-up puts in, each part of
the syntax, scopes in the SQL, and catching up after changes."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from email.message import EmailMessage
from pathlib import Path

import pytest

from exoimap.app import backup
from exoimap.store.archive import ArchiveStore
from exoimap.store.memory import MemoryStore
from exoimap.store.search import (
    FolderMark,
    SearchIndex,
    SearchScope,
    SearchSyntaxError,
    parse_query,
    update_search,
)

DAY = dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC)
ALL = SearchScope(content=("*",))


def _mail(
    subject: str,
    sender: str,
    to: str,
    body: str,
    *,
    cc: str = "",
    html: bool = False,
    attachment: bool = False,
) -> bytes:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message.set_content(body, subtype="html" if html else "plain")
    if attachment:
        message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="q.pdf")
    return bytes(message)


def _source() -> MemoryStore:
    source = MemoryStore()
    source.create_folder_now("Projects")
    source.add_message(
        "INBOX",
        _mail("Quarterly report", "Alice <alice@contoso.com>", "bob@contoso.com", "Revenue up"),
        internal_date=DAY,
    )
    source.add_message(
        "INBOX",
        _mail(
            "=?utf-8?q?Caf=C3=A9_meeting?=",
            "carol@fabrikam.example",
            "bob@contoso.com",
            "<p>The <b>zeppelin</b> &amp; the budget</p><script>hidden words</script>",
            cc="dave@contoso.com",
            html=True,
        ),
        internal_date=DAY + dt.timedelta(days=2),
    )
    source.add_message(
        "Projects",
        _mail(
            "Invoice 2026-17",
            "alice@contoso.com",
            "erin@contoso.com",
            "See the invoice",
            attachment=True,
        ),
        internal_date=DAY + dt.timedelta(days=5),
    )
    return source


async def _archive_and_index(source: MemoryStore, root: Path, index: SearchIndex) -> int:
    archive = ArchiveStore.open(root, fsync_mode="none")
    try:
        report = await backup(source, archive)
        assert report.ok, report.errors
        done = await update_search(archive, index, account="bob", mailbox="Bob@Contoso.com")
        return done.indexed
    finally:
        await archive.close()


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[MemoryStore, Path, SearchIndex]:
    source = _source()
    index = SearchIndex(tmp_path / "search" / "index.sqlite")
    assert asyncio.run(_archive_and_index(source, tmp_path / "bob", index)) == 3
    return source, tmp_path / "bob", index


def _subjects(index: SearchIndex, text: str, scope: SearchScope = ALL) -> list[str]:
    return [h.subject for h in index.search(parse_query(text), scope, page=1, size=50).hits]


def test_the_index_file_is_private(indexed: tuple[MemoryStore, Path, SearchIndex]) -> None:
    index = indexed[2]
    assert os.stat(index.path).st_mode & 0o777 == 0o600
    assert os.stat(index.path.parent).st_mode & 0o777 == 0o700


def test_each_part_of_the_syntax(indexed: tuple[MemoryStore, Path, SearchIndex]) -> None:
    index = indexed[2]
    assert _subjects(index, "revenue") == ["Quarterly report"]
    assert _subjects(index, "zeppelin") == ["Café meeting"]  # HTML body, tags dropped
    assert _subjects(index, "hidden") == []  # script content is not text
    assert _subjects(index, "cafe") == ["Café meeting"]  # decoded header, no diacritics
    assert _subjects(index, "from:alice") == ["Invoice 2026-17", "Quarterly report"]
    assert _subjects(index, "from:alice@contoso.com invoice") == ["Invoice 2026-17"]
    assert _subjects(index, "to:erin") == ["Invoice 2026-17"]
    assert _subjects(index, "cc:dave") == ["Café meeting"]
    assert _subjects(index, 'subject:"quarterly report"') == ["Quarterly report"]
    assert _subjects(index, "subject:revenue") == []  # a body word is not in the subject
    assert _subjects(index, "folder:projects") == ["Invoice 2026-17"]
    assert _subjects(index, "folder:inbox") == ["Café meeting", "Quarterly report"]
    assert _subjects(index, "has:attachment") == ["Invoice 2026-17"]
    assert _subjects(index, "before:2026-03-12") == ["Quarterly report"]
    assert _subjects(index, "after:2026-03-11") == ["Invoice 2026-17", "Café meeting"]
    assert _subjects(index, "after:2026-03-12") == ["Invoice 2026-17"]
    assert _subjects(index, "after:2026-03-10 before:2026-03-13") == ["Café meeting"]
    assert _subjects(index, "quart*") == ["Quarterly report"]
    assert _subjects(index, "budget zeppelin") == ["Café meeting"]  # words are ANDed
    assert _subjects(index, "budget revenue") == []


def test_query_text_is_never_fts_syntax(indexed: tuple[MemoryStore, Path, SearchIndex]) -> None:
    index = indexed[2]
    assert parse_query('"').words == []  # an empty phrase asks for nothing
    for hostile in ('x"y', "OR", "NEAR(a b)", "sender:*", "a) OR (b", "^x", "{body}: x", "*"):
        assert _subjects(index, hostile) == [], hostile


def test_bad_filters_are_one_clear_error() -> None:
    with pytest.raises(SearchSyntaxError, match="before: wants a date such as 2026-01-31"):
        parse_query("before:yesterday")
    with pytest.raises(SearchSyntaxError, match="has:attachment"):
        parse_query("has:pictures")
    with pytest.raises(SearchSyntaxError, match="too long"):
        parse_query("x" * 1001)
    assert parse_query("x:y").words == ["x:y"]


def test_scope_is_in_the_query(indexed: tuple[MemoryStore, Path, SearchIndex]) -> None:
    index = indexed[2]
    assert _subjects(index, "revenue", SearchScope(content=("*@fabrikam.example",))) == []
    assert _subjects(index, "revenue", SearchScope(content=("bob@contoso.com",))) == [
        "Quarterly report"
    ]
    assert _subjects(index, "revenue", SearchScope(content=("BOB@*",))) == ["Quarterly report"]
    assert _subjects(index, "revenue", SearchScope()) == []
    # metadata only: headers match, the text does not
    headers_only = SearchScope(metadata=("*@contoso.com",))
    assert _subjects(index, "revenue", headers_only) == []
    assert _subjects(index, "quarterly", headers_only) == ["Quarterly report"]
    assert _subjects(index, "has:attachment", headers_only) == ["Invoice 2026-17"]
    # a mailbox in both is searched by its content, and found once
    both = SearchScope(content=("bob@contoso.com",), metadata=("*",))
    assert _subjects(index, "revenue", both) == ["Quarterly report"]
    assert index.search(parse_query("from:alice"), both, page=1, size=50).total == 2


def test_paging_and_counts(tmp_path: Path) -> None:
    source = MemoryStore()
    for n in range(23):
        body = f"common word number{n}"
        source.add_message(
            "INBOX",
            _mail(f"m{n}", "x@contoso.com", "bob@contoso.com", body),
            internal_date=DAY + dt.timedelta(hours=n),
        )
    index = SearchIndex(tmp_path / "index.sqlite")
    asyncio.run(_archive_and_index(source, tmp_path / "bob", index))
    pages = [index.search(parse_query("common"), ALL, page=p, size=10) for p in (1, 2, 3)]
    assert [r.total for r in pages] == [23, 23, 23]
    assert [len(r.hits) for r in pages] == [10, 10, 3]
    subjects = [h.subject for r in pages for h in r.hits]
    assert subjects == [f"m{n}" for n in range(22, -1, -1)]  # newest first, each once


def test_catching_up_after_changes(indexed: tuple[MemoryStore, Path, SearchIndex]) -> None:
    source, root, index = indexed
    assert index.marks("bob")["INBOX"].messages == 2
    source.add_message(
        "INBOX",
        _mail("Late news", "frank@contoso.com", "bob@contoso.com", "armadillo"),
        internal_date=DAY,
    )
    source.rename_folder_now("Projects", "Work")

    async def sync_with_mirror() -> int:
        archive = ArchiveStore.open(root, fsync_mode="none")
        try:
            from exoimap.sync import SyncPolicy

            await backup(source, archive, SyncPolicy(mirror=True))
            done = await update_search(archive, index, account="bob", mailbox="bob@contoso.com")
            again = await update_search(archive, index, account="bob", mailbox="bob@contoso.com")
            assert again.indexed == again.forgotten == 0  # nothing left to do
            return done.indexed
        finally:
            await archive.close()

    asyncio.run(sync_with_mirror())
    assert _subjects(index, "armadillo") == ["Late news"]
    assert _subjects(index, "folder:work") == ["Invoice 2026-17"]
    assert _subjects(index, "folder:projects") == []
    source.expunge_now("INBOX", [1])
    asyncio.run(sync_with_mirror())
    assert _subjects(index, "revenue") == []
    assert sorted(index.marks("bob")) == ["INBOX", "Work"]


def test_folder_page_only_when_the_index_is_current(
    indexed: tuple[MemoryStore, Path, SearchIndex],
) -> None:
    index = indexed[2]
    mark = index.marks("bob")["INBOX"]
    listed = index.folder_page("bob", "INBOX", mark, page=1, size=1)
    assert listed is not None
    assert listed.total == 2
    assert [h.uid for h in listed.hits] == [2]
    behind = FolderMark(mark.uidvalidity, mark.uidnext + 1, mark.messages + 1)
    assert index.folder_page("bob", "INBOX", behind, page=1, size=1) is None
    assert index.folder_page("bob", "Nowhere", mark, page=1, size=1) is None


def test_a_large_message_is_indexed_from_its_first_bytes(tmp_path: Path) -> None:
    source = MemoryStore()
    message = EmailMessage()
    message["Subject"] = "Scanned contract"
    message["From"] = "alice@contoso.com"
    message.set_content("signed copy")
    message.add_attachment(
        b"\x00" * 900_000, maintype="application", subtype="pdf", filename="c.pdf"
    )
    big = bytes(message)
    source.add_message("INBOX", big, internal_date=DAY)
    index = SearchIndex(tmp_path / "index.sqlite")
    asyncio.run(_archive_and_index(source, tmp_path / "bob", index))
    (hit,) = index.search(parse_query("signed has:attachment"), ALL, page=1, size=5).hits
    assert hit.size == len(big) > 1_000_000  # the whole message's size, not what was read
