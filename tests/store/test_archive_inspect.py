"""Looking at an archive from outside (``ArchiveInspection``): the lock's holder is found
without taking the lock, the index check reads only and is bounded in time, and the run
journal's records give the growth history."""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from exoimap.app import backup
from exoimap.app.doctor_archive import check_files, check_index, growth_per_day
from exoimap.app.doctor_findings import DoctorSettings
from exoimap.errors import StoreLocked
from exoimap.store.archive import ArchiveStore, RunJournal
from exoimap.store.archive.files import release_lock, take_lock
from exoimap.store.archive.index import Index
from exoimap.store.archive.inspect import ArchiveInspection, LockState
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryStore
from exoimap.sync import SyncPolicy

_HOLDER = (
    "import sys; from pathlib import Path; from exoimap.store.archive.files import take_lock\n"
    "take_lock(Path(sys.argv[1]))\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


@contextmanager
def holding_lock(lock: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process that holds the archive lock ``lock`` while the block runs."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        assert child.stdout.readline() == "held\n"
        yield child
    finally:
        child.stdin.close()
        child.wait(timeout=30)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    with holding_lock(tmp_path / "lock") as child:
        yield child


def test_a_live_holder_is_named_and_the_lock_stays_its(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    archive = ArchiveInspection(tmp_path)
    assert archive.lock() == LockState(held=True, pid=holder.pid)
    # looking took nothing: the holder still has it, so a second taker is refused
    with pytest.raises(StoreLocked, match=f"pid {holder.pid}"):
        take_lock(tmp_path / "lock")


def test_the_pid_an_ended_holder_left_is_not_a_lock(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)
    assert (tmp_path / "lock").read_text().strip() == str(holder.pid)
    assert ArchiveInspection(tmp_path).lock() == LockState(held=False, pid=holder.pid)
    release_lock(take_lock(tmp_path / "lock"))  # and the next run takes it


def test_a_holder_in_this_process_is_seen_and_no_lock_file_is_made(tmp_path: Path) -> None:
    archive = ArchiveInspection(tmp_path)
    assert archive.lock() is None
    assert not (tmp_path / "lock").exists()
    fd = take_lock(tmp_path / "lock")
    try:
        assert archive.lock() == LockState(held=True, pid=os.getpid())
    finally:
        release_lock(fd)
    assert archive.lock() == LockState(held=False, pid=os.getpid())


def test_the_index_check_reads_only_and_gives_up_at_its_time_limit(tmp_path: Path) -> None:
    async def fill() -> None:
        store = ArchiveStore.open(tmp_path, fsync_mode="none")
        try:
            for n in range(40):
                await store.create_folder(f"Folder {n}")
        finally:
            await store.close()

    asyncio.run(fill())
    index_file = tmp_path / "index.sqlite"
    before = index_file.read_bytes()
    archive = ArchiveInspection(tmp_path)
    assert archive.check_index(time_limit=30) == "ok"
    assert archive.check_index(time_limit=0) is None  # out of time: not an answer
    assert index_file.read_bytes() == before
    report = archive.compare_files()
    assert report.ok
    assert report.checked == 0


def test_a_missing_index_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="unable to open"):
        Index.open_read_only(tmp_path / "index.sqlite")
    assert not (tmp_path / "index.sqlite").exists()


def recorded_runs(directory: Path, finished: list[tuple[_dt.datetime, int]]) -> None:
    """Runs recorded by the run journal itself, then dated back to ``finished``."""
    for when, fetched in finished:
        journal = RunJournal(directory, durable=False)
        journal.begin({"mirror": False})
        journal.finish({"bytes": fetched, "fetched": 1})
        path = directory / f"{journal.run_id}.json"
        record = json.loads(path.read_text())
        record["finished"] = when.isoformat()
        path.write_text(json.dumps(record))


def test_the_growth_rate_comes_from_the_runs_after_the_first(tmp_path: Path) -> None:
    now = _dt.datetime.now(_dt.UTC)
    day = _dt.timedelta(days=1)
    recorded_runs(
        tmp_path / "runs",
        [(now - 4 * day, 900 << 20), (now - 2 * day, 3 << 20), (now - day, 1 << 20), (now, 0)],
    )
    unfinished = RunJournal(tmp_path / "runs", durable=False)
    unfinished.begin({"mirror": False})  # still running: no bytes to count yet
    (tmp_path / "runs" / "garbage.json").write_text("{not json")
    runs = ArchiveInspection(tmp_path).finished_runs()
    assert [fetched for _when, fetched in runs] == [900 << 20, 3 << 20, 1 << 20, 0]
    rate, span = growth_per_day(runs)
    assert span == 4 * day
    assert rate == pytest.approx((4 << 20) / 4)  # the first backup's 900 MiB left out
    assert growth_per_day(runs[:1]) == (0.0, _dt.timedelta(0))


def test_damage_quick_check_names_is_reported_on_one_line(tmp_path: Path) -> None:
    database = sqlite3.connect(tmp_path / "index.sqlite")
    database.execute("CREATE TABLE m (a INTEGER PRIMARY KEY, b TEXT)")
    database.execute("CREATE INDEX mb ON m (b)")
    database.executemany("INSERT INTO m VALUES (?, ?)", [(n, f"x{n}" * 5) for n in range(300)])
    database.commit()
    database.close()
    data = bytearray((tmp_path / "index.sqlite").read_bytes())
    data[2 * 4096 + 8 : 2 * 4096 + 408] = b"\xff" * 400  # the cells of page 3
    (tmp_path / "index.sqlite").write_bytes(bytes(data))
    archive = ArchiveInspection(tmp_path)
    answer = archive.check_index(time_limit=30)
    assert answer is not None
    assert "On tree page 3" in answer
    finding = check_index("work", archive, DoctorSettings())
    assert not finding.ok
    assert finding.detail.startswith(f"{tmp_path / 'index.sqlite'} failed its integrity check")
    assert "On tree page 3" in finding.detail
    assert "\n" not in finding.detail
    assert finding.fix.startswith("run `exoimap verify work`")


def test_files_a_crashed_run_left_point_to_the_next_sync_and_a_busy_archive_only_warns(
    tmp_path: Path,
) -> None:
    """A run killed after renaming its batch into cur/ and before the index commit leaves
    files the index does not know and a journal record; the doctor says the next sync
    finishes that work (and, while someone holds the archive, only warns)."""
    source = MemoryStore()
    for n in range(3):
        source.add_message("INBOX", sample_message(n))

    class Killed(Exception):
        pass

    def kill(point: str) -> None:
        if point == "append.renamed":
            raise Killed(point)

    async def crash() -> None:
        archive = ArchiveStore.open(tmp_path, crash_hook=kill)
        try:
            with pytest.raises((Killed, ExceptionGroup)):
                await backup(source, archive, SyncPolicy(max_parallel_folders=1))
        finally:
            await archive.close()

    asyncio.run(crash())
    archive = ArchiveInspection(tmp_path)
    assert archive.pending_records() >= 1
    report = archive.compare_files()
    assert len(report.unindexed) == 3
    finding = check_files("work", archive, busy=False)
    assert not finding.ok
    assert "3 not in the index" in finding.detail
    assert finding.fix.startswith("a run that crashed left 1 journal record: the next `exoimap")

    busy = check_files("work", archive, busy=True)
    assert busy.ok
    assert busy.warning
    assert "run doctor again when it ends" in busy.fix

    async def reopen() -> None:  # the fix: opening it rolls the batch forward
        store = ArchiveStore.open(tmp_path)
        await store.close()

    asyncio.run(reopen())
    assert archive.pending_records() == 0
    assert check_files("work", archive, busy=False).ok
