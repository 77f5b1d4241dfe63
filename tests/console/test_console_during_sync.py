"""The console reading an archive that a sync is writing: message lists come from the
search index's last consistent view, marked as such; what needs the message files answers
503 with a clear message; the console's own concurrent requests never lock each other
out; and a sync starting during a page waits for it instead of failing."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from exoimap.console.archives import Mailboxes
from exoimap.errors import StoreLocked
from exoimap.store.archive import ArchiveStore
from exoimap.store.archive.files import release_lock, take_lock

from .conftest import ConsoleWorld, TestClient


@pytest.fixture(scope="module")
def auditor(world: ConsoleWorld) -> TestClient:
    client = world.client()
    world.sign_in(client, "auditor")
    return client


def test_pages_while_a_sync_holds_the_archive(world: ConsoleWorld, auditor: TestClient) -> None:
    syncing = ArchiveStore.open(world.paths.archive_dir("other"), create=False)
    try:
        listing = auditor.get("/m/other/folder?name=INBOX")
        assert listing.status_code == 200
        assert 'id="behind"' in listing.text
        assert "Quarterly numbers" in listing.text
        message = auditor.get("/m/other/message?folder=INBOX&uid=1")
        assert message.status_code == 503
        assert "The archive is in use (a sync is running); try again shortly." in message.text
    finally:
        asyncio.run(syncing.close())
    listing = auditor.get("/m/other/folder?name=INBOX")
    assert 'id="behind"' not in listing.text
    assert auditor.get("/m/other/message?folder=INBOX&uid=1").status_code == 200


def test_concurrent_console_reads_take_turns(world: ConsoleWorld) -> None:
    mailboxes = Mailboxes(world.paths)
    mailbox = mailboxes.find("own")
    assert mailbox is not None

    async def many() -> list[object]:
        pages = [mailboxes.page(mailbox, "INBOX", 1) for _ in range(6)]
        bodies = [mailboxes.message(mailbox, "INBOX", 1) for _ in range(6)]
        return await asyncio.gather(*pages, *bodies)

    results = asyncio.run(many())
    assert all(r is not None for r in results)
    assert all(getattr(r, "behind", False) is False for r in results[:6])


def test_a_sync_waits_for_a_page_instead_of_failing(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    asyncio.run(ArchiveStore.open(root, fsync_mode="none").close())
    held = take_lock(root / "lock")  # a console page in progress
    with pytest.raises(StoreLocked, match="in use by another exoimap process"):
        ArchiveStore.open(root, create=False)  # no grace: refused at once
    release = threading.Timer(0.3, release_lock, (held,))
    release.start()
    started = time.monotonic()
    store = ArchiveStore.open(root, create=False, lock_wait=30.0)
    assert time.monotonic() - started >= 0.2  # it waited for the page
    asyncio.run(store.close())
    release.join()
