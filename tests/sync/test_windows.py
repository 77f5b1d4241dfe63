"""A large folder is listed, planned and verified one window of source UIDs at a time, with
the same outcome as one whole listing."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from exoimap.errors import StoreError
from exoimap.store.archive import ArchiveStore
from exoimap.store.archive.state import ArchiveSyncState
from exoimap.store.base import (
    Capabilities,
    Folder,
    MessageInfo,
    MessageListing,
    UidRange,
)
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryFolder, MemoryStore
from exoimap.sync import Progress, SyncPolicy, SyncReport, sync, verify
from exoimap.sync.windows import UidWindows
from tests.sync.scenarios import EXCHANGE_CAPS, WrappedStore

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
SMALL = SyncPolicy(window_messages=4)
WHOLE = SyncPolicy(window_messages=10**9)
CAPABILITIES = {
    "condstore": None,  # the memory store's default: CONDSTORE and QRESYNC
    "exchange": EXCHANGE_CAPS,
}


# --- the windows ----------------------------------------------------------------------------


def _taken(windows: UidWindows, held: Sequence[int] = ()) -> list[UidRange]:
    out = []
    counts = iter(held)
    for window in windows:
        out.append(window)
        windows.held(next(counts, 0))
    return out


def test_a_small_folder_is_one_open_ended_window() -> None:
    assert _taken(UidWindows(uidnext=101, messages=100, per_window=100)) == [UidRange(1)]
    assert _taken(UidWindows(uidnext=10**6, messages=10, per_window=100)) == [UidRange(1)]
    assert _taken(UidWindows(uidnext=10**6, messages=10**6, per_window=None)) == [UidRange(1)]


def test_windows_cover_every_uid_once_and_the_last_is_open_ended() -> None:
    windows = _taken(UidWindows(uidnext=1001, messages=1000, per_window=100), [100] * 20)
    assert windows[0] == UidRange(1, 100)
    assert windows[-1].last is None
    for before, after in itertools.pairwise(windows):
        assert before.last is not None
        assert after.first == before.last + 1
    assert len(windows) == 10


def test_the_span_follows_the_density_and_what_the_windows_held() -> None:
    # 1,000 messages spread over a million UIDs: a window spans 100,000 UIDs
    sparse = _taken(UidWindows(uidnext=1_000_001, messages=1000, per_window=100), [100] * 20)
    assert sparse[0] == UidRange(1, 100_000)
    # a window that held too many halves the next span, one that held few doubles it
    adapted = _taken(UidWindows(uidnext=100_001, messages=1000, per_window=100), [500, 10])
    assert adapted[0] == UidRange(1, 10_000)
    assert adapted[1] == UidRange(10_001, 15_000)
    assert adapted[2] == UidRange(15_001, 25_000)


# --- the engine, windowed and whole ---------------------------------------------------------


def _mailbox(capabilities: Capabilities | None) -> MemoryStore:
    """INBOX: 60 messages with holes in its UIDs; Work: 9."""
    source = MemoryStore(capabilities=capabilities)
    source.create_folder_now("Work")
    for n in range(1, 61):
        flags = ["\\Seen"] if n % 3 else []
        source.add_message("INBOX", sample_message(n, 400 + n), flags=flags, internal_date=T0)
    source.expunge_now("INBOX", list(range(7, 61, 7)))
    for n in range(100, 109):
        source.add_message("Work", sample_message(n, 500), internal_date=T0)
    return source


def _change(source: MemoryStore, *, content: bool = True) -> None:
    """Changes in every part of INBOX's UID range, and new messages (``content``: also
    other content under UID 30, which a resync without CONDSTORE finds only by sampling)."""
    source.store_flags("INBOX", [2, 26, 58], frozenset({"\\Flagged"}), "add")
    source.store_flags("INBOX", [34], frozenset(), "set")
    source.expunge_now("INBOX", [10, 40, 59])
    if content:
        source.replace_content_now("INBOX", 30, sample_message(300, 900), internal_date=T1)
    for n in range(61, 66):
        source.add_message("INBOX", sample_message(n, 450), internal_date=T0)


def _rows(archive: ArchiveStore) -> dict[str, list[tuple[object, ...]]]:
    """Every folder's messages, without the archive's own UIDs."""

    async def read() -> dict[str, list[tuple[object, ...]]]:
        out = {}
        for info in await archive.list_folders():
            async with archive.open_folder(info.name) as folder:
                messages = (await folder.list_messages(detail=True)).messages
            out[info.name] = sorted(
                (
                    (m.origin.uidvalidity, m.origin.uid) if m.origin else (0, 0),
                    sorted(m.flags),
                    m.gone_at is not None,
                    m.sha256,
                )
                for m in messages
            )
        return out

    return asyncio.run(read())


def _backup(source: MemoryStore, archive: ArchiveStore, policy: SyncPolicy) -> SyncReport:
    report = asyncio.run(sync(source, archive, archive.sync_state(), policy))
    assert report.ok, report.summary()
    return report


class _Reads:
    """Counts how the archive's sync state is read: whole folders, or windows."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.whole: list[str] = []
        self.windows: list[int] = []
        whole, windowed = ArchiveSyncState.messages, ArchiveSyncState.anchored_messages

        async def messages(
            state: ArchiveSyncState, folder: Folder, **kw: bool
        ) -> list[MessageInfo]:
            self.whole.append(folder.name)
            return await whole(state, folder, **kw)

        async def anchored(
            state: ArchiveSyncState, folder: Folder, uv: int, uids: UidRange, **kw: bool
        ) -> list[MessageInfo]:
            found = await windowed(state, folder, uv, uids, **kw)
            self.windows.append(len(found))
            return found

        monkeypatch.setattr(ArchiveSyncState, "messages", messages)
        monkeypatch.setattr(ArchiveSyncState, "anchored_messages", anchored)


@pytest.mark.parametrize("kind", sorted(CAPABILITIES))
def test_windows_give_the_same_archive_as_one_whole_listing(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _mailbox(CAPABILITIES[kind])
    windowed = ArchiveStore.open(tmp_path / "windowed", fsync_mode="none")
    whole = ArchiveStore.open(tmp_path / "whole", fsync_mode="none")
    reads = _Reads(monkeypatch)
    try:
        first = _backup(source, windowed, SMALL)
        assert reads.whole == []  # never a whole folder
        assert len(reads.windows) > 10
        assert max(reads.windows) <= 2 * SMALL.window_messages
        assert first.summary() == _backup(source, whole, WHOLE).summary()
        assert _rows(windowed) == _rows(whole)
        content = kind == "condstore"
        _change(source, content=content)
        reads.windows.clear()
        again = _backup(source, windowed, SMALL)
        assert again.summary() == _backup(source, whole, WHOLE).summary()
        summary = again.summary()
        assert summary["fetched"] == 5 + content  # five new, one with new content
        assert summary["content_changed"] == content
        assert summary["gone"] == 3
        assert summary["flags_changed"] == 4
        assert reads.whole == []
        assert _rows(windowed) == _rows(whole)
        quiet = _backup(source, windowed, SMALL).summary()
        assert (quiet["fetched"], quiet["flags_changed"], quiet["gone"]) == (0, 0, 0)
        checked = asyncio.run(verify(source, windowed, windowed.sync_state(), policy=SMALL))
        assert checked.ok
        assert sum(c.checked for c in checked.folders) == 60 - 8 + 9 - 3 + 5
    finally:
        asyncio.run(windowed.close())
        asyncio.run(whole.close())


def test_verify_by_windows_finds_what_one_whole_listing_finds(tmp_path: Path) -> None:
    source = _mailbox(None)
    archive = ArchiveStore.open(tmp_path, fsync_mode="none")
    try:
        _backup(source, archive, SMALL)
        _change(source)  # not backed up: missing, not marked gone, flags differ
        results = [
            asyncio.run(verify(source, archive, archive.sync_state(), policy=policy))
            for policy in (SMALL, WHOLE)
        ]
        inbox = [next(c for c in r.folders if c.source == "INBOX") for r in results]
        assert inbox[0].missing == inbox[1].missing == [61, 62, 63, 64, 65]
        assert inbox[0].not_marked_gone == inbox[1].not_marked_gone == [10, 40, 59]
        assert inbox[0].flag_mismatch == inbox[1].flag_mismatch == [2, 26, 34, 58]
        assert inbox[0].date_mismatch == inbox[1].date_mismatch == [30]
    finally:
        asyncio.run(archive.close())


def test_messages_without_an_origin_are_matched_over_the_whole_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a UIDVALIDITY change every copy is unanchored: matched by Message-ID against
    the whole folder, nothing fetched again."""
    source = _mailbox(None)
    archive = ArchiveStore.open(tmp_path, fsync_mode="none")
    try:
        _backup(source, archive, SMALL)
        source.reset_uidvalidity("INBOX")
        reads = _Reads(monkeypatch)
        report = _backup(source, archive, SMALL)
        assert "INBOX" in reads.whole
        assert report.summary()["fetched"] == 0
        assert report.summary()["rematched"] == 60 - 8
        reads.whole.clear()
        _backup(source, archive, SMALL)
        assert reads.whole == []  # anchored again: windows from now on
    finally:
        asyncio.run(archive.close())


class _RenumberingFolder(MemoryFolder):
    """Gives the folder a new UIDVALIDITY after its first window is listed."""

    async def list_messages(
        self,
        *,
        changed_since: int | None = None,
        detail: bool = False,
        size_and_date: bool | frozenset[int] = False,
        uids: UidRange | None = None,
    ) -> MessageListing:
        listing = await super().list_messages(
            changed_since=changed_since, detail=detail, size_and_date=size_and_date, uids=uids
        )
        if uids is not None and uids.first == 1 and _RenumberingStore.armed:
            _RenumberingStore.armed = False
            self._store.reset_uidvalidity(self.name)
        return listing


class _RenumberingStore(WrappedStore):
    armed: ClassVar[bool] = False
    folder_class = _RenumberingFolder


def test_a_uidvalidity_change_between_windows_fails_the_folder_and_the_next_run_heals(
    tmp_path: Path,
) -> None:
    source = _RenumberingStore()
    for n in range(1, 41):
        source.add_message("INBOX", sample_message(n, 400), internal_date=T0)
    archive = ArchiveStore.open(tmp_path, fsync_mode="none")
    try:
        _RenumberingStore.armed = True
        report = asyncio.run(sync(source, archive, archive.sync_state(), SMALL))
        assert not _RenumberingStore.armed
        errors = [e for f in report.folders for e in f.errors]
        assert len(errors) == 1
        assert isinstance(errors[0], StoreError)
        assert "UIDVALIDITY changed during the sync" in str(errors[0])
        assert report.partial
        healed = _backup(source, archive, SMALL)
        assert asyncio.run(verify(source, archive, archive.sync_state(), policy=SMALL)).ok
        assert healed.summary()["fetched"] + report.summary()["fetched"] >= 40
    finally:
        asyncio.run(archive.close())


def test_progress_says_when_a_folder_s_plan_is_final(tmp_path: Path) -> None:
    source = _mailbox(None)
    archive = ArchiveStore.open(tmp_path, fsync_mode="none")
    updates: list[Progress] = []
    try:
        asyncio.run(sync(source, archive, archive.sync_state(), SMALL, progress=updates.append))
    finally:
        asyncio.run(archive.close())
    inbox = [u for u in updates if u.folder == "INBOX"]
    assert len(inbox) == 52
    assert not inbox[0].folder_plan_final  # more windows to come
    assert inbox[-1].folder_plan_final
    assert inbox[-1].folder_done == inbox[-1].folder_planned == 52
