"""Engine behaviour: partial failure, progress and audit events, streaming, run journal."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from exoimap.app import backup
from exoimap.app import verify_archive as verify
from exoimap.errors import FolderError, MessageError
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import FetchedMessage
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryFolder, MemoryStore
from exoimap.sync import Progress, SyncEvent, SyncPolicy


class FaultyStore(MemoryStore):
    """A MemoryStore whose folder ``Broken`` cannot be opened and whose UID 2 in INBOX
    fails to fetch (fault injection, like a flaky server)."""

    def open_folder(self, name: str) -> AbstractAsyncContextManager[MemoryFolder]:
        if name == "Broken":
            raise FolderError("the server refused to select Broken", folder=name, retryable=True)
        return self._faulty(name)

    @asynccontextmanager
    async def _faulty(self, name: str) -> AsyncIterator[MemoryFolder]:
        async with super().open_folder(name) as folder:
            yield _FaultyFolder(self, folder.name)


class _FaultyFolder(MemoryFolder):
    broken_uid: int | None = 2

    async def fetch(self, uids: Sequence[int]) -> AsyncIterator[FetchedMessage]:
        async for message in super().fetch(uids):
            if self.name == "INBOX" and message.uid == self.broken_uid:
                raise MessageError("the server could not convert UID 2", folder="INBOX", uid=2)
            yield message


def _source(cls: type[MemoryStore] = MemoryStore) -> MemoryStore:
    src = cls()
    for name in ("Broken", "Fine"):
        src.create_folder_now(name)
        for n in range(3):
            src.add_message(name, sample_message(hash(name) % 1000 + n))
    for n in range(4):
        src.add_message("INBOX", sample_message(n, 5000))
    return src


def test_one_failing_folder_does_not_stop_the_others(tmp_path: Path) -> None:
    src = _source(FaultyStore)
    events: list[SyncEvent] = []

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            report = await backup(src, archive, SyncPolicy(batch_messages=10), events=events.append)
            assert report.partial
            assert not report.ok
            by_name = {f.source: f for f in report.folders}
            assert [type(e) for e in by_name["Broken"].errors] == [FolderError]
            assert by_name["Fine"].ok
            assert by_name["Fine"].fetched == 3
            inbox = by_name["INBOX"]
            assert [type(e) for e in inbox.errors] == [MessageError]
            assert inbox.fetched == 3  # UID 1 before the failure, 3 and 4 after it
            async with archive.open_folder("INBOX") as folder:
                origins = sorted(
                    m.origin.uid for m in (await folder.list_messages()).messages if m.origin
                )
            assert origins == [1, 3, 4]
        finally:
            await archive.close()

    asyncio.run(main())
    kinds = [e.kind for e in events]
    assert kinds[0] == "sync_started"
    assert kinds[-1] == "sync_finished"
    failed = [e for e in events if e.kind == "folder_failed"]
    assert {e.folder for e in failed} == {"Broken", "INBOX"}
    assert events[-1].detail["failed_folders"] == 2


def test_progress_and_audit_events(tmp_path: Path) -> None:
    src = _source()
    updates: list[Progress] = []
    events: list[SyncEvent] = []

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            report = await backup(
                src,
                archive,
                SyncPolicy(batch_messages=2),
                progress=updates.append,
                events=events.append,
            )
            assert report.ok
            assert report.fetched == 10
            assert report.created == ["Broken", "Fine"]
            assert (await verify(src, archive, deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(main())
    assert len(updates) == 10
    last = updates[-1]
    assert (last.total_done, last.total_planned) == (10, 10)
    assert last.total_bytes == sum(
        len(src.message_bytes(f, u)) for f in ("Broken", "Fine") for u in (1, 2, 3)
    ) + sum(len(src.message_bytes("INBOX", u)) for u in (1, 2, 3, 4))
    inbox = [u for u in updates if u.folder == "INBOX"]
    assert [u.folder_done for u in inbox] == [1, 2, 3, 4]
    assert all(u.folder_planned == 4 for u in inbox)
    stored = [e for e in events if e.kind == "messages_stored"]
    assert sum(e.detail["count"] for e in stored) == 10
    assert {e.folder for e in events if e.kind == "folder_created"} == {"Broken", "Fine"}


def test_interrupted_run_is_reported_by_the_next(tmp_path: Path) -> None:
    src = _source()

    class Stop(BaseException):
        pass

    def hook(point: str) -> None:
        if point == "append.committed":
            raise Stop

    async def first() -> None:
        archive = ArchiveStore.open(tmp_path, crash_hook=hook)
        try:
            with pytest.raises((Stop, BaseExceptionGroup)):
                await backup(src, archive, SyncPolicy(max_parallel_folders=1))
        finally:
            await archive.close()

    asyncio.run(first())
    events: list[SyncEvent] = []

    async def second() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            assert (await backup(src, archive, events=events.append)).ok
        finally:
            await archive.close()

    asyncio.run(second())
    assert [e.kind for e in events][:2] == ["state_notes", "sync_started"]
    assert any("was interrupted" in note for note in events[0].detail["notes"])
    runs = [json.loads(p.read_text()) for p in sorted((tmp_path / "runs").glob("*.json"))]
    assert [r.get("interrupted", False) for r in runs] == [True, False]
    assert runs[1]["summary"]["fetched"] > 0


def test_large_message_streams_with_bounded_chunks(tmp_path: Path) -> None:
    """A 20 MB message reaches the archive's file in the source's chunks, never whole."""
    src = MemoryStore(chunk_size=256 * 1024)
    big = sample_message(1, 20 * 1024 * 1024)
    src.add_message("INBOX", big)
    writes: list[int] = []

    def recording_write(fd: int, data: memoryview) -> int:
        writes.append(len(data))
        return os.write(fd, data)

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path, writer=recording_write)
        try:
            report = await backup(src, archive)
            assert report.ok
            assert report.bytes == len(big)
            assert (await verify(src, archive, deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(main())
    assert sum(writes) == len(big)
    assert max(writes) == 256 * 1024
    assert len(writes) == -(-len(big) // (256 * 1024))


def test_mirror_deletes_what_the_source_deleted(tmp_path: Path) -> None:
    src = _source()

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            await backup(src, archive)
            src.expunge_now("INBOX", [1, 2])
            src.delete_folder_now("Broken")
            kept = await backup(src, archive)
            assert kept.folders_gone == ["Broken"]
            assert sum(f.gone for f in kept.folders) == 2
            assert (await archive.folder_state("INBOX")).exists == 4
            src.expunge_now("INBOX", [3])
            src.delete_folder_now("Fine")
            mirrored = await backup(src, archive, SyncPolicy(mirror=True))
            # only what is seen deleted now goes: Broken was already marked gone and stays
            assert mirrored.folders_deleted == ["Fine"]
            assert await archive.folder_record("Broken") is not None
            assert not (tmp_path / "maildir" / ".Fine").exists()
            assert sum(f.expunged for f in mirrored.folders) == 1
            assert (await archive.folder_state("INBOX")).exists == 3
        finally:
            await archive.close()

    asyncio.run(main())


def test_uidvalidity_reset_and_rename_download_only_new_messages(tmp_path: Path) -> None:
    src = _source()

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            first = await backup(src, archive)
            assert first.fetched == 10
            src.reset_uidvalidity("INBOX")
            src.add_message("INBOX", sample_message(77))
            src.rename_folder_now("Fine", "Renamed")
            src.add_message("Renamed", sample_message(78))
            second = await backup(src, archive)
            assert second.ok
            assert second.renamed == [("Fine", "Renamed")]
            by_name = {f.source: f for f in second.folders}
            assert (by_name["INBOX"].fetched, by_name["INBOX"].rematched) == (1, 4)
            assert by_name["Renamed"].fetched == 1
            assert second.fetched == 2
            assert (await verify(src, archive, deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(main())


def test_slow_disk_backpressure_keeps_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a tiny queue limit the producer waits for the writer thread; nothing is lost."""
    from exoimap.store.archive import writer

    monkeypatch.setattr(writer, "PENDING_LIMIT", 1000)
    src = _source()
    src.add_message("INBOX", sample_message(99, 300_000))

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            assert (await backup(src, archive)).fetched == 11
            assert (await verify(src, archive, deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(main())


def test_a_failed_message_is_retried_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even with CONDSTORE/QRESYNC (incremental listings), a message that failed is
    fetched by the next run once the source delivers it."""
    src = _source(FaultyStore)
    src.delete_folder_now("Broken")

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            first = await backup(src, archive)
            assert first.partial
            assert first.fetched == 6
            monkeypatch.setattr(_FaultyFolder, "broken_uid", None)
            second = await backup(src, archive)
            assert second.ok
            assert second.fetched == 1
            assert (await verify(src, archive, deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(main())


def test_rename_that_changes_uidvalidity_is_found_by_content(tmp_path: Path) -> None:
    from tests.sync.scenarios import step_initial, step_rename_by_moving

    src = MemoryStore()
    step_initial(src)

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            await backup(src, archive)
            step_rename_by_moving(src)
            report = await backup(src, archive)
            assert report.ok
            assert report.renamed == [("Work/Projects", "Job/Projects")]
            assert report.folders_gone == ["Work"]  # empty: nothing to recognise it by
            projects = next(f for f in report.folders if f.source == "Job/Projects")
            assert (projects.fetched, projects.rematched) == (1, 3)
            assert (await verify(src, archive, deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(main())


def _folders_in_start_order(updates: Sequence[Progress]) -> list[str]:
    order: list[str] = []
    for update in updates:
        if update.folder not in order:
            order.append(update.folder)
    return order


def test_largest_folders_copied_whole_start_first(tmp_path: Path) -> None:
    """One folder at a time: the folders copied whole start by size (the biggest must not
    be the last to start), folders synced before follow in the listed order, and the
    report keeps the listed order."""
    src = MemoryStore()
    for name, count in (("Alpha", 1), ("Beta", 5), ("Gamma", 3), ("INBOX", 2)):
        if name != "INBOX":
            src.create_folder_now(name)
        for n in range(count):
            src.add_message(name, sample_message(len(name) * 100 + n))

    async def run(updates: list[Progress]) -> list[str]:
        archive = ArchiveStore.open(tmp_path)
        try:
            report = await backup(
                src, archive, SyncPolicy(max_parallel_folders=1), progress=updates.append
            )
            assert report.ok
            return [folder.source for folder in report.folders]
        finally:
            await archive.close()

    first: list[Progress] = []
    listed = asyncio.run(run(first))
    assert _folders_in_start_order(first) == ["Beta", "Gamma", "INBOX", "Alpha"]
    assert listed == ["Alpha", "Beta", "Gamma", "INBOX"]  # as the source lists them

    src.create_folder_now("Delta")
    for n in range(4):
        src.add_message("Delta", sample_message(900 + n))
    for name in ("Alpha", "Gamma"):
        src.add_message(name, sample_message(len(name) * 100 + 50))
    again: list[Progress] = []
    asyncio.run(run(again))
    assert _folders_in_start_order(again) == ["Delta", "Alpha", "Gamma"]
