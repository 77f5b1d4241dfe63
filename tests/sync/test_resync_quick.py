"""The quick resync: with QRESYNC, unchanged folders are skipped without being opened, and
every kind of change (on the server or in the archive's files) still gets them synced."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from exoimap.app import backup
from exoimap.app import verify_archive as verify
from exoimap.errors import DiskFull
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import Capabilities
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryFolder, MemoryStore
from exoimap.sync import SyncEvent, SyncReport

FOLDERS = ("Fine", "Projects", "Receipts")


class CountingStore(MemoryStore):
    """A MemoryStore that records which folders were opened (SELECT on a server)."""

    opened: list[str]

    def open_folder(self, name: str) -> AbstractAsyncContextManager[MemoryFolder]:
        self.opened.append(name)
        return self._counted(name)

    @asynccontextmanager
    async def _counted(self, name: str) -> AsyncIterator[MemoryFolder]:
        async with super().open_folder(name) as folder:
            yield folder


def _source(capabilities: Capabilities | None = None) -> CountingStore:
    src = CountingStore(capabilities=capabilities)
    src.opened = []
    for name in FOLDERS:
        src.create_folder_now(name)
        for n in range(3):
            src.add_message(name, sample_message(len(name) * 10 + n))
    src.add_message("INBOX", sample_message(99))
    return src


def _sync(src: CountingStore, root: Path) -> SyncReport:
    async def main() -> SyncReport:
        archive = ArchiveStore.open(root, fsync_mode="none")
        try:
            report = await backup(src, archive)
            opened = list(src.opened)
            assert (await verify(src, archive, deep=True)).ok
            src.opened[:] = opened  # what the backup opened, not the check
            return report
        finally:
            await archive.close()

    src.opened.clear()
    return asyncio.run(main())


def test_no_change_resync_opens_no_folder(tmp_path: Path) -> None:
    src = _source()
    first = _sync(src, tmp_path)
    assert sorted(src.opened) == sorted(["INBOX", *FOLDERS])
    assert first.summary()["fetched"] == 10
    again = _sync(src, tmp_path)
    assert src.opened == []
    assert again.ok
    assert len(again.folders) == 4  # every folder is still reported
    assert again.summary()["fetched"] == 0


def test_each_kind_of_change_gets_its_folder_synced(tmp_path: Path) -> None:
    src = _source()
    _sync(src, tmp_path)
    src.add_message("Fine", sample_message(500))
    src.store_flags("Projects", [1], frozenset({"\\Flagged"}), "add")
    src.expunge_now("Receipts", [2])
    report = _sync(src, tmp_path)
    assert sorted(src.opened) == ["Fine", "Projects", "Receipts"]
    summary = report.summary()
    assert (summary["fetched"], summary["flags_changed"], summary["gone"]) == (1, 1, 1)
    _sync(src, tmp_path)
    assert src.opened == []  # and quiet again afterwards


def test_a_hand_deleted_file_is_noticed_and_fetched_again(tmp_path: Path) -> None:
    src = _source()
    _sync(src, tmp_path)
    _sync(src, tmp_path)
    assert src.opened == []
    victim = next((tmp_path / "maildir" / ".Projects" / "cur").iterdir())
    victim.unlink()
    report = _sync(src, tmp_path)
    assert src.opened == ["Projects"]
    assert report.summary()["refetched_missing"] == 1
    assert len(list(victim.parent.iterdir())) == 3


def test_without_qresync_every_folder_is_listed(tmp_path: Path) -> None:
    src = _source(Capabilities(condstore=True, qresync=False, max_connections=8))
    _sync(src, tmp_path)
    _sync(src, tmp_path)
    assert sorted(src.opened) == sorted(["INBOX", *FOLDERS])


def test_a_folder_changed_while_stamped_is_not_trusted(tmp_path: Path) -> None:
    """A directory mtime not yet older than the settle time is never recorded: a change in
    the same clock tick could hide behind it."""
    src = _source()
    _sync(src, tmp_path)
    cur = tmp_path / "maildir" / ".Fine" / "cur"
    future = time.time() + 3600
    os.utime(cur, (future, future))

    async def stamp() -> int:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            return await archive.record_files_checked(["Fine", "INBOX"])
        finally:
            await archive.close()

    assert asyncio.run(stamp()) == 0
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        stamps = dict(db.execute("SELECT name, files_stamp FROM folders"))
    assert stamps["Fine"] is not None
    assert str(os.stat(cur).st_mtime_ns) not in stamps["Fine"]  # the racy one: not recorded
    _sync(src, tmp_path)
    assert src.opened == ["Fine"]


def test_failing_to_record_stamps_never_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def full_disk(self: ArchiveStore, names: object) -> int:
        raise DiskFull("no space left on the device while recording the folders' files stamps")

    monkeypatch.setattr(ArchiveStore, "record_files_checked", full_disk)
    src = _source()
    events: list[SyncEvent] = []

    async def main() -> SyncReport:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            return await backup(src, archive, events=events.append)
        finally:
            await archive.close()

    report = asyncio.run(main())
    assert report.ok
    assert report.summary()["fetched"] == 10
    skipped = [e for e in events if e.kind == "content_check_skipped"]
    assert [e.detail["type"] for e in skipped] == ["DiskFull"]
