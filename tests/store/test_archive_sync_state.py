"""The archive's SyncState, ContentMatching, and its work off the event loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from exoimap.app import backup
from exoimap.store.archive import ArchiveStore, ArchiveSyncState
from exoimap.store.archive.files import Maildir
from exoimap.store.archive.index import Index
from exoimap.store.base import (
    AppendItem,
    ContentMatching,
    FolderSyncRecord,
    MessageRef,
    SyncState,
    UidRange,
    chunks_of,
)
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryStore
from exoimap.sync import SyncPolicy

WHEN = dt.datetime(2024, 3, 4, 5, 6, 7, tzinfo=dt.UTC)


def _item(n: int, origin: MessageRef | None) -> AppendItem:
    data = sample_message(n)
    return AppendItem(chunks=chunks_of(data), size=len(data), origin=origin)


async def _items(items: list[AppendItem]) -> Any:
    for item in items:
        yield item


def test_the_archive_sync_state_keeps_folder_and_message_state(tmp_path: Path) -> None:
    async def main() -> None:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            state: SyncState = archive.sync_state()
            assert isinstance(state, ArchiveSyncState)
            await archive.create_folder("Work")
            async with archive.open_folder("Work") as folder:
                uids = await folder.append(
                    _items([_item(n, MessageRef(7, n)) for n in range(1, 4)])
                )
            await state.appended("Work", {uid: MessageRef(7, uid) for uid in uids})

            await state.folder_synced("Work", uidvalidity=7, uidnext=4, modseq=9)
            await state.folder_gone("INBOX", WHEN)
            records = {r.name: r for r in await state.folders()}
            assert records["Work"] == FolderSyncRecord("Work", 7, 4, 9, None)
            assert records["INBOX"].gone_at == WHEN  # a datetime, not the stored text
            await state.folder_synced("INBOX", uidvalidity=1, uidnext=1, modseq=None)
            assert (await archive.folder_record("INBOX")).gone_at is None  # type: ignore[union-attr]

            await state.set_origins("Work", {uids[0]: MessageRef(8, 1)})
            await state.mark_gone("Work", [uids[1]], WHEN)
            async with archive.open_folder("Work") as folder:
                listed = {m.uid: m for m in await state.messages(folder)}
            assert listed[uids[0]].origin == MessageRef(8, 1)
            assert listed[uids[1]].gone_at == WHEN
            assert listed[uids[2]].origin == MessageRef(7, 3)

            assert await state.content_lost("Work") == []
            victim = next((tmp_path / "maildir" / ".Work" / "cur").iterdir())
            victim.unlink()
            lost = await state.content_lost("Work")
            assert len(lost) == 1
            await state.forget("Work", lost)
            async with archive.open_folder("Work") as folder:
                assert len(await state.messages(folder)) == 2
            # forgetting content voids the recorded HIGHESTMODSEQ: the next sync lists all
            assert (await archive.folder_record("Work")).source_modseq is None  # type: ignore[union-attr]

            await state.folder_renamed("Work", "Job")  # the archive's rename did the work
            await state.folder_deleted("Job")
        finally:
            await archive.close()

    asyncio.run(main())


def test_content_checks_use_the_files_stamps(tmp_path: Path) -> None:
    async def main() -> None:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            state = archive.sync_state()
            async with archive.open_folder("INBOX") as folder:
                await folder.append(_items([_item(1, MessageRef(1, 1))]))
            assert await state.content_unchanged(["INBOX"]) == set()
            await state.content_checked(["INBOX"])
            assert await state.content_unchanged(["INBOX", "Nowhere"]) == {"INBOX"}
            next((tmp_path / "maildir" / "cur").iterdir()).unlink()
            assert await state.content_unchanged(["INBOX"]) == set()
        finally:
            await archive.close()

    asyncio.run(main())


def test_missing_files_lists_nothing_while_the_stamp_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listings: list[str] = []
    entries = Maildir.entries

    def counted(self: Maildir, dirname: str) -> Iterator[tuple[str, str]]:
        listings.append(dirname)
        return entries(self, dirname)

    monkeypatch.setattr(Maildir, "entries", counted)

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            async with archive.open_folder("INBOX") as folder:
                await folder.append(_items([_item(n, MessageRef(1, n)) for n in (1, 2)]))
                assert await folder.missing_files() == []
                assert len(listings) == 1  # no stamp yet: listed
                assert await archive.record_files_checked(["INBOX"]) == 1
                listings.clear()
                assert await folder.missing_files() == []
                assert listings == []  # the stamp vouches for the files: not listed
                victim = next((tmp_path / "maildir" / "cur").iterdir())
                victim.unlink()
                assert len(await folder.missing_files()) == 1
                assert listings == [""]
        finally:
            await archive.close()

    asyncio.run(main())


def test_runs_are_recorded_and_an_interrupted_one_is_a_note(tmp_path: Path) -> None:
    async def run(finish: bool) -> list[str]:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            state = archive.sync_state()
            notes = await state.begin_run({"mode": "backup"})
            if finish:
                await state.end_run({"fetched": 3})
            return notes
        finally:
            await archive.close()

    assert asyncio.run(run(finish=False)) == []
    notes = asyncio.run(run(finish=True))
    assert len(notes) == 1
    assert "was interrupted" in notes[0]
    assert asyncio.run(run(finish=True)) == []  # reported once
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "runs").glob("*.json"))]
    assert [r.get("interrupted", False) for r in records] == [True, False, False]
    assert records[1]["summary"] == {"fetched": 3}


def test_recovery_notes_come_with_the_run(tmp_path: Path) -> None:
    src = MemoryStore()
    src.add_message("INBOX", sample_message(1))

    async def main() -> list[str]:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            await backup(src, archive)
        finally:
            await archive.close()
        (tmp_path / "index.sqlite").unlink()
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            return await archive.sync_state().begin_run({})
        finally:
            await archive.close()

    notes = asyncio.run(main())
    assert len(notes) == 1
    assert "rebuilt from 1 message files" in notes[0]


def test_a_no_change_folder_synced_commits_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    execute = Index._execute

    def recording(self: Index, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        statements.append(sql)
        return execute(self, sql, params)

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            state = archive.sync_state()
            await state.folder_synced("INBOX", uidvalidity=5, uidnext=10, modseq=3)
            monkeypatch.setattr(Index, "_execute", recording)
            await state.folder_synced("INBOX", uidvalidity=5, uidnext=10, modseq=3)
        finally:
            await archive.close()

    asyncio.run(main())
    assert statements
    assert not [s for s in statements if s.startswith(("BEGIN", "UPDATE", "COMMIT"))]


def test_append_matching_adopts_stored_content_with_a_stale_origin(tmp_path: Path) -> None:
    async def main() -> None:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            async with archive.open_folder("INBOX") as folder:
                assert isinstance(folder, ContentMatching)
                first = await folder.append(_items([_item(1, MessageRef(1, 1))]))
                # the source renumbered its messages (a new UIDVALIDITY): same bytes
                again = await folder.append_matching(
                    _items([_item(1, MessageRef(2, 5)), _item(2, MessageRef(2, 6))])
                )
                assert again[0] == first[0]  # adopted, not stored twice
                assert again[1] > first[0]
                listed = {m.uid: m for m in (await folder.list_messages()).messages}
                assert listed[first[0]].origin == MessageRef(2, 5)
                # plain append never matches content
                twice = await folder.append(_items([_item(2, MessageRef(3, 1))]))
                assert twice[0] not in listed
        finally:
            await archive.close()

    asyncio.run(main())
    assert len(list((tmp_path / "maildir" / "cur").iterdir())) == 3


def test_sqlite_runs_only_on_the_archive_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[str] = set()
    execute, executemany = Index._execute, Index._executemany

    def on_execute(self: Index, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        threads.add(threading.current_thread().name)
        return execute(self, sql, params)

    def on_executemany(self: Index, sql: str, rows: Any) -> None:
        threads.add(threading.current_thread().name)
        executemany(self, sql, rows)

    monkeypatch.setattr(Index, "_execute", on_execute)
    monkeypatch.setattr(Index, "_executemany", on_executemany)
    src = MemoryStore()
    src.create_folder_now("Work")
    for n in range(6):
        src.add_message("INBOX" if n % 2 else "Work", sample_message(n))

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            assert (await backup(src, archive, SyncPolicy(batch_messages=2))).ok
            assert (await backup(src, archive)).ok
            assert (await archive.verify_files(deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(main())
    assert threads
    assert all(name.startswith("exoimap-archive") for name in threads), threads


def test_unanchored_means_a_live_message_without_an_origin_under_this_uidvalidity(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            state = archive.sync_state()
            async with archive.open_folder("INBOX") as folder:
                await folder.append(_items([_item(n, MessageRef(7, n)) for n in (1, 2, 3)]))
                assert not await state.has_unanchored(folder, 7)
                assert await state.has_unanchored(folder, 6)  # stale: an older UIDVALIDITY
                assert await state.has_unanchored(folder, 8)
                [orphan] = await folder.append(_items([_item(4, None)]))
                assert await state.has_unanchored(folder, 7)  # no origin at all
                await state.mark_gone("INBOX", [orphan], WHEN)
                assert not await state.has_unanchored(folder, 7)  # gone: nothing to match
                window = await state.anchored_messages(folder, 7, UidRange(2, 3))
                assert [m.origin for m in window] == [MessageRef(7, 2), MessageRef(7, 3)]
                assert await state.anchored_messages(folder, 6, UidRange(1)) == []
        finally:
            await archive.close()

    asyncio.run(main())
