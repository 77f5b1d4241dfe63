"""The archive beyond the Store contract: on-disk format, lock, bad input, recovery."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exoimap.app import backup
from exoimap.app import verify_archive as verify
from exoimap.errors import DiskFull, ErrorScope, StoreError, StoreLocked, StoreUnavailable
from exoimap.store.archive import ArchiveStore, IndexStamp
from exoimap.store.archive.files import (
    Maildir,
    decode_folder_dir,
    encode_folder_dir,
    is_hashed_dir,
)
from exoimap.store.archive.index import Index, index_stamp
from exoimap.store.base import AppendItem, chunks_of
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryStore
from exoimap.sync import SyncPolicy

DATE = dt.datetime(2022, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=-5)))


def _run(coro_factory: Callable[[], object]) -> object:
    return asyncio.run(coro_factory())  # type: ignore[arg-type]


def _source(count: int = 5) -> MemoryStore:
    src = MemoryStore()
    src.create_folder_now("Entwürfe/a.b")
    for n in range(count):
        src.add_message(
            "INBOX", sample_message(n), flags=["\\Seen", "$Forwarded"], internal_date=DATE
        )
        src.add_message("Entwürfe/a.b", sample_message(100 + n), internal_date=DATE)
    return src


async def _backup(src: MemoryStore, root: Path, **kw: object) -> object:
    archive = ArchiveStore.open(root, **kw)  # type: ignore[arg-type]
    try:
        return await backup(src, archive, SyncPolicy(batch_messages=2))
    finally:
        await archive.close()


def test_known_folder_encodings() -> None:
    assert encode_folder_dir("INBOX") == ""
    assert encode_folder_dir("Entwürfe") == ".Entw&APw-rfe"
    assert encode_folder_dir("a.b/c&d") == ".a\\2eb.c&-d"
    assert encode_folder_dir("~x\\y/~") == ".\\7ex\\5cy.\\7e"
    assert decode_folder_dir(".Entw&APw-rfe.x") == "Entwürfe/x"


@given(st.lists(st.text(min_size=1).filter(lambda s: "/" not in s), min_size=1, max_size=3))
def test_folder_encoding_round_trips(segments: list[str]) -> None:
    name = "/".join(segments)
    if name.upper() == "INBOX":
        return
    encoded = encode_folder_dir(name)
    assert encoded.startswith(".")
    if is_hashed_dir(encoded):  # a long name: see test_archive_folder_names.py
        assert len(encoded.encode()) <= 255
        return
    assert encoded.count(".") == len(segments)  # dots only as separators
    assert all(0x20 <= ord(c) < 0x7F for c in encoded)
    assert decode_folder_dir(encoded) == name


def test_files_are_maildir_plus_plus(tmp_path: Path) -> None:
    src = _source(2)
    _run(lambda: _backup(src, tmp_path))
    maildir = tmp_path / "maildir"
    sub = maildir / ".Entw&APw-rfe.a\\2eb"
    assert (sub / "maildirfolder").exists()
    assert (maildir / ".Entw&APw-rfe" / "maildirfolder").exists()
    inbox = sorted(os.listdir(maildir / "cur"))
    assert len(inbox) == 2
    assert all(name.endswith(":2,PS") for name in inbox)  # $Forwarded + \Seen
    contents = {(maildir / "cur" / n).read_bytes() for n in inbox}
    assert contents == {sample_message(0), sample_message(1)}
    for name in inbox:
        assert os.stat(maildir / "cur" / name).st_mtime == DATE.timestamp()
    assert sorted(p.read_bytes() for p in (sub / "cur").iterdir()) == sorted(
        [sample_message(100), sample_message(101)]
    )
    assert not any((maildir / "tmp").iterdir())


def test_second_user_gets_store_locked_with_pid(tmp_path: Path) -> None:
    archive = ArchiveStore.open(tmp_path)
    with pytest.raises(StoreLocked, match=f"pid {os.getpid()}"):
        ArchiveStore.open(tmp_path)
    _run(archive.close)
    ArchiveStore.open(tmp_path)  # free again; left open: the process exit releases it


def test_lock_of_killed_process_is_released(tmp_path: Path) -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        ArchiveStore.open(tmp_path)
        os._exit(9)  # dies holding the lock
    os.waitpid(pid, 0)
    archive = ArchiveStore.open(tmp_path)
    _run(archive.close)


class _FullDisk:
    """An ``os.write`` that fails with ENOSPC after ``budget`` bytes."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def __call__(self, fd: int, data: memoryview) -> int:
        if len(data) > self.budget:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.budget -= len(data)
        return os.write(fd, data)


def test_disk_full_loses_nothing_and_resumes(tmp_path: Path) -> None:
    src = _source(3)
    assert _run(lambda: _backup(src, tmp_path)).ok  # type: ignore[attr-defined]
    for n in range(10, 20):
        src.add_message("INBOX", sample_message(n, 2000))
        src.add_message("Entwürfe/a.b", sample_message(200 + n, 2000))
    report = _run(lambda: _backup(src, tmp_path, writer=_FullDisk(5000)))
    assert report.partial  # type: ignore[attr-defined]
    errors = [e for f in report.folders for e in f.errors]  # type: ignore[attr-defined]
    assert any(isinstance(e, DiskFull) for e in errors)
    assert "no space left" in str(next(e for e in errors if isinstance(e, DiskFull)))

    async def check() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            assert (await archive.verify_files(deep=True)).ok
            async with archive.open_folder("INBOX") as folder:
                stored = (await folder.list_messages()).messages
            assert len(stored) >= 3  # the first backup is intact
            assert not any((tmp_path / "maildir" / "tmp").iterdir())
            report = await backup(src, archive)
            assert report.ok
            assert (await verify(src, archive, deep=True)).ok
        finally:
            await archive.close()

    _run(check)


def test_corrupt_index_is_kept_aside_and_rebuilt(tmp_path: Path) -> None:
    src = _source(4)
    src.store_flags("INBOX", [2], frozenset({"work"}), "add")  # a keyword: index only
    _run(lambda: _backup(src, tmp_path))
    index = tmp_path / "index.sqlite"
    data = index.read_bytes()
    index.write_bytes(data[:100] + b"\x00garbage" * 50 + data[500:])

    async def check() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            assert len(archive.recovery_notes) == 1
            note = archive.recovery_notes[0]
            assert "damaged" in note
            assert "8 message files" in note
            kept = list((tmp_path / "damaged").glob("index-*.sqlite"))
            assert len(kept) == 1
            assert kept[0].read_bytes()[:100] == data[:100]
            report = await backup(src, archive)
            assert report.ok
            assert report.fetched == 0  # matched again by Message-ID and size
            assert sum(f.rematched for f in report.folders) == 8
            assert sum(f.flags_changed for f in report.folders) == 1  # the lost keyword
            assert (await verify(src, archive, deep=True)).ok
        finally:
            await archive.close()

    _run(check)


@pytest.mark.parametrize("damage", ["truncate", "empty", "delete"])
def test_lost_index_is_rebuilt_not_refilled(damage: str, tmp_path: Path) -> None:
    """A truncated, emptied or deleted index with message files present is rebuilt."""
    src = _source(3)
    _run(lambda: _backup(src, tmp_path))
    index = tmp_path / "index.sqlite"
    if damage == "truncate":
        index.write_bytes(index.read_bytes()[:3000])
    elif damage == "empty":
        index.write_bytes(b"")
    else:
        index.unlink()

    async def check() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            assert len(archive.recovery_notes) == 1
            assert "rebuilt from 6 message files" in archive.recovery_notes[0]
            report = await backup(src, archive)
            assert report.ok
            assert report.fetched == 0
            assert (await verify(src, archive, deep=True)).ok
        finally:
            await archive.close()

    _run(check)


def test_file_deleted_by_hand_is_found_and_fetched_again(tmp_path: Path) -> None:
    src = _source(3)
    _run(lambda: _backup(src, tmp_path))
    victim = sorted((tmp_path / "maildir" / "cur").iterdir())[1]
    victim.unlink()

    async def check() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            files = await archive.verify_files()
            assert len(files.missing) == 1
            assert not files.ok
            assert not (await verify(src, archive)).ok
            async with archive.open_folder("INBOX") as folder:
                with pytest.raises(Exception, match="missing"):
                    async for _message in folder.fetch([files.missing[0][1]]):
                        pass
            report = await backup(src, archive)
            inbox = next(f for f in report.folders if f.target == "INBOX")
            assert (inbox.refetched_missing, inbox.fetched) == (1, 1)
            assert (await verify(src, archive, deep=True)).ok
        finally:
            await archive.close()

    _run(check)


def test_unindexed_and_corrupted_files_are_reported(tmp_path: Path) -> None:
    src = _source(2)
    _run(lambda: _backup(src, tmp_path))
    cur = tmp_path / "maildir" / "cur"
    first = sorted(cur.iterdir())[0]
    (cur / "1234.stray.host:2,S").write_bytes(b"Subject: dropped in by hand\r\n\r\n")
    first.write_bytes(first.read_bytes().replace(b"line", b"LINE"))  # same size, new bytes

    async def check() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            shallow = await archive.verify_files()
            assert shallow.unindexed == [("INBOX", "1234.stray.host")]
            assert shallow.corrupt == []
            deep = await archive.verify_files(deep=True)
            assert len(deep.corrupt) == 1
        finally:
            await archive.close()

    _run(check)


def test_failure_after_journal_stops_writes_until_reopened(tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    def hook(point: str) -> None:
        if point == "append.renamed":
            raise Boom(point)

    src = _source(2)

    async def crash() -> None:
        archive = ArchiveStore.open(tmp_path, crash_hook=hook)
        try:
            with pytest.raises((Boom, ExceptionGroup)):
                await backup(src, archive, SyncPolicy(max_parallel_folders=1))
            with pytest.raises(StoreUnavailable, match="open it again"):
                await archive.create_folder("X")
        finally:
            await archive.close()

    _run(crash)

    async def reopen() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            assert any("recovered an interrupted batch" in n for n in archive.recovery_notes)
            report = await backup(src, archive)
            assert report.ok
            assert (await verify(src, archive, deep=True)).ok
        finally:
            await archive.close()

    _run(reopen)


def test_index_of_schema_1_is_migrated_in_place(tmp_path: Path) -> None:
    """An archive written before files stamps existed opens as it is: the column is added,
    every message stays, and the next resync records stamps."""
    src = MemoryStore()
    for n in range(3):
        src.add_message("INBOX", sample_message(n))

    async def sync() -> None:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            await backup(src, archive)
            assert (await verify(src, archive, deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(sync())
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        db.execute("ALTER TABLE folders DROP COLUMN files_stamp")
        db.execute("PRAGMA user_version=1")
    asyncio.run(sync())
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
        stamp = db.execute("SELECT files_stamp FROM folders WHERE name='INBOX'").fetchone()[0]
    assert stamp is not None


def test_index_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    asyncio.run(ArchiveStore.open(tmp_path).close())
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="index schema 99; this exoimap knows 2"):
        ArchiveStore.open(tmp_path)


def test_an_upgrade_that_cannot_write_is_an_error_not_damage(tmp_path: Path) -> None:
    """A schema-1 index whose upgrade is blocked (here another program holds a write lock)
    gives a clear error; the index is not taken for damaged and rebuilt."""
    asyncio.run(ArchiveStore.open(tmp_path).close())
    index = tmp_path / "index.sqlite"
    with sqlite3.connect(index) as db:
        db.execute("ALTER TABLE folders DROP COLUMN files_stamp")
        db.execute("PRAGMA user_version=1")
    blocker = sqlite3.connect(index, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreLocked, match="upgrading the index to schema 2"):
            ArchiveStore.open(tmp_path)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert list((tmp_path / "damaged").iterdir()) == []
    asyncio.run(ArchiveStore.open(tmp_path).close())
    with sqlite3.connect(index) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2


def _recorded_checks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each open of an index ran its integrity check, in order."""
    checks: list[bool] = []
    original = Index.check_and_init

    def recording(self: Index, *, quick_check: bool = True) -> None:
        checks.append(quick_check)
        original(self, quick_check=quick_check)

    monkeypatch.setattr(Index, "check_and_init", recording)
    return checks


def test_a_trusted_index_stamp_skips_the_check_only_while_the_file_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _source(3)
    _run(lambda: _backup(src, tmp_path))
    checks = _recorded_checks(monkeypatch)

    async def open_close(trusted: IndexStamp | None) -> ArchiveStore:
        archive = ArchiveStore.open(tmp_path, trusted_index=trusted)
        await archive.close()
        return archive

    first = asyncio.run(open_close(None))
    stamp = first.closed_index_stamp
    assert stamp is not None
    second = asyncio.run(open_close(stamp))
    assert checks == [True, False]  # the file a clean session closed is not checked again
    assert second.closed_index_stamp == stamp  # nothing was written: still that file

    # Damage after the stamp was taken changes the file's ctime: checked, found, rebuilt.
    index = tmp_path / "index.sqlite"
    data = index.read_bytes()
    index.write_bytes(data[:100] + b"\x00garbage" * 50 + data[500:])
    checks.clear()

    async def reopened() -> None:
        archive = ArchiveStore.open(tmp_path, trusted_index=stamp)
        try:
            assert checks[0] is True
            assert "damaged" in archive.recovery_notes[0]
            report = await backup(src, archive)
            assert report.ok
            assert report.fetched == 0  # matched again, nothing lost or fetched twice
        finally:
            await archive.close()

    asyncio.run(reopened())


def test_an_index_with_unmerged_changes_has_no_stamp(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    assert index_stamp(path) is None  # no file
    path.write_bytes(b"x")
    assert index_stamp(path) is not None
    Path(f"{path}-wal").write_bytes(b"frames not yet in the file")
    assert index_stamp(path) is None


@pytest.mark.parametrize("failures", [1, 99])
def test_a_failing_file_step_is_a_store_error_and_rolled_forward(
    failures: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename that fails once is rolled forward on the spot: the caller gets the error,
    the archive stays usable. One that keeps failing leaves the journal record; the
    archive refuses writes until it is opened again, which finishes the work."""
    left = [failures]
    rename_flags = Maildir.rename_flags

    def failing(self: Maildir, dirname: str, base: str, letters: str) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise PermissionError(13, "Permission denied")
        rename_flags(self, dirname, base, letters)

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            async with archive.open_folder("INBOX") as folder:
                data = sample_message(1)
                [uid] = await folder.append(_one(data))
                monkeypatch.setattr(Maildir, "rename_flags", failing)
                with pytest.raises(StoreError, match="Permission denied") as caught:
                    await folder.set_flags({uid: frozenset({"\\Seen"})})
                assert caught.value.scope is ErrorScope.FOLDER
                assert caught.value.folder == "INBOX"
                if failures == 1:
                    await archive.create_folder("Still usable")
                else:
                    with pytest.raises(StoreUnavailable, match="open it again"):
                        await archive.create_folder("Refused")
        finally:
            await archive.close()

    asyncio.run(main())
    monkeypatch.setattr(Maildir, "rename_flags", rename_flags)

    async def reopened() -> None:
        archive = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            assert not any((tmp_path / "journal").iterdir())
            async with archive.open_folder("INBOX") as folder:
                [message] = (await folder.list_messages()).messages
            assert message.flags == frozenset({"\\Seen"})
            assert (await archive.verify_files()).misnamed == []
        finally:
            await archive.close()

    asyncio.run(reopened())


async def _one(data: bytes) -> AsyncIterator[AppendItem]:
    yield AppendItem(chunks=chunks_of(data), size=len(data))


def test_a_sound_session_lets_the_next_process_skip_the_check_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _source(3)
    _run(lambda: _backup(src, tmp_path))
    checks = _recorded_checks(monkeypatch)
    note = tmp_path / "index.sqlite.trusted"

    async def open_close(*, trust: bool) -> None:
        archive = ArchiveStore.open(tmp_path)
        if trust:
            archive.trust_index_when_closed()
        await archive.close()

    asyncio.run(open_close(trust=True))
    assert note.stat().st_mode & 0o777 == 0o600
    asyncio.run(open_close(trust=False))
    assert not note.exists()  # taken at open: a session that does not vouch leaves none
    asyncio.run(open_close(trust=True))
    assert checks == [True, False, True]

    # written by someone else after the stamp was left: checked again
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        db.execute("PRAGMA user_version=2")
    checks.clear()
    asyncio.run(open_close(trust=False))
    assert checks == [True]

    note.write_text("not a stamp")  # whatever is in the note, it only ever adds a check
    asyncio.run(open_close(trust=False))
    assert checks == [True, True]
    assert not note.exists()

    note.write_bytes(b"\xff\xfe[1")  # not even text
    asyncio.run(open_close(trust=False))
    assert checks == [True, True, True]
    assert not note.exists()

    note.mkdir()  # a note that cannot be read: the archive opens, and checks
    asyncio.run(open_close(trust=False))
    asyncio.run(open_close(trust=False))  # the lock was released: it opens again
    assert checks == [True] * 5
