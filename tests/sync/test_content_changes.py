"""Content changed under the same UID (a server that lost its store and refilled it under
the same UIDVALIDITY): the plan's rule, the backup noticing it, and verify --repair."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import ClassVar

from exoimap.app import backup, verify_archive
from exoimap.errors import MessageError
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import (
    SYSTEM_FLAGS,
    Capabilities,
    FetchedMessage,
    FolderState,
    MessageInfo,
    MessageListing,
    MessageRef,
    UidRange,
)
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryFolder, MemoryStore
from exoimap.sync import SyncEvent, SyncPolicy
from exoimap.sync.listings import CONTENT_SAMPLE
from exoimap.sync.plan import MessageRules, plan_messages
from tests.sync.scenarios import WrappedStore

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2025, 6, 1, 12, 30, tzinfo=dt.UTC)
SEEN = frozenset({"\\Seen"})


# --- the rule --------------------------------------------------------------------------------


def _source(size: int, date: dt.datetime) -> MessageListing:
    messages = [
        MessageInfo(1, SEEN, size=100, internal_date=T0),
        MessageInfo(2, SEEN, size=size, internal_date=date),
    ]
    return MessageListing(FolderState("F", 7, 3, 2), messages)


def _stored() -> list[MessageInfo]:
    return [
        MessageInfo(11, SEEN, size=100, internal_date=T0, origin=MessageRef(7, 1)),
        MessageInfo(12, SEEN, size=200, internal_date=T0, origin=MessageRef(7, 2)),
    ]


def test_another_date_under_the_same_uid_is_fetched_again() -> None:
    plan = plan_messages(7, _source(200, T1), _stored(), MessageRules(follow_content=True))
    assert plan.replaced == {12: 2}
    assert plan.fetch == [2]
    assert not plan.flags
    assert not plan.gone


def test_another_size_counts_only_where_both_sides_sizes_are_exact() -> None:
    exact = MessageRules(follow_content=True, sizes_comparable=True)
    assert plan_messages(7, _source(201, T0), _stored(), exact).replaced == {12: 2}
    estimates = MessageRules(follow_content=True, sizes_comparable=False)
    plan = plan_messages(7, _source(201, T0), _stored(), estimates)
    assert plan.replaced == {}
    assert plan.fetch == []


def test_content_is_not_followed_unless_asked_and_unknown_values_are_equal() -> None:
    assert plan_messages(7, _source(999, T1), _stored(), MessageRules()).replaced == {}
    unsized = MessageListing(
        FolderState("F", 7, 3, 2), [MessageInfo(1, SEEN), MessageInfo(2, SEEN)]
    )
    rules = MessageRules(follow_content=True, sizes_comparable=True)
    assert plan_messages(7, unsized, _stored(), rules).replaced == {}


def test_a_changed_message_too_large_for_the_target_is_skipped_not_set_aside() -> None:
    rules = MessageRules(follow_content=True, sizes_comparable=True, max_size=500)
    plan = plan_messages(7, _source(900, T0), _stored(), rules)
    assert plan.replaced == {}
    assert plan.fetch == []
    assert list(plan.skipped) == [2]


# --- the backup ------------------------------------------------------------------------------

EXCHANGE_LIKE = Capabilities(
    condstore=False,
    qresync=False,
    custom_keywords=False,
    permanent_flags=SYSTEM_FLAGS,
    exact_sizes=False,  # Exchange's RFC822.SIZE is an estimate
)


def _filled(source: MemoryStore, count: int) -> MemoryStore:
    for n in range(1, count + 1):
        source.add_message("INBOX", sample_message(n, 700 + n), internal_date=T0)
    return source


def _mailbox(capabilities: Capabilities | None = None) -> MemoryStore:
    return _filled(MemoryStore(capabilities=capabilities), 5)


async def _stored_rows(archive: ArchiveStore) -> list[MessageInfo]:
    async with archive.open_folder("INBOX") as folder:
        return (await folder.list_messages(detail=True)).messages


def _refill(source: MemoryStore, uids: list[int], *, same_size_and_date: bool = False) -> None:
    """Other messages under the same UIDs, UIDVALIDITY unchanged."""
    for uid in uids:
        old = source.message_bytes("INBOX", uid)
        if same_size_and_date:
            new = old[:-3] + bytes(b ^ 0x20 for b in old[-3:])
            source.replace_content_now("INBOX", uid, new)
        else:
            new = sample_message(100 + uid, 1500)
            source.replace_content_now("INBOX", uid, new, internal_date=T1)


def test_backup_notices_other_content_under_the_same_uid_and_keeps_the_old_copy(
    tmp_path: Path,
) -> None:
    source = _mailbox(EXCHANGE_LIKE)  # no CONDSTORE, estimated sizes: the date tells

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            assert (await backup(source, archive)).fetched == 5
            before = {m.origin.uid: m for m in await _stored_rows(archive) if m.origin}
            _refill(source, [2, 4])
            events: list[SyncEvent] = []
            report = await backup(source, archive, events=events.append)
            [inbox] = [f for f in report.folders if f.source == "INBOX"]
            assert inbox.content_changed == [2, 4]
            assert inbox.fetched == 2
            assert report.summary()["content_changed"] == 2
            [event] = [e for e in events if e.kind == "content_changed"]
            assert event.folder == "INBOX"
            assert event.detail["uids"] == [2, 4]

            rows = await _stored_rows(archive)
            assert len(rows) == 7  # the two old copies are kept
            for uid in (2, 4):
                old = next(m for m in rows if m.uid == before[uid].uid)
                assert old.origin is None
                assert old.gone_at is not None
                assert old.sha256 == before[uid].sha256
                [new] = [m for m in rows if m.origin is not None and m.origin.uid == uid]
                assert new.internal_date == T1
                assert new.size == len(source.message_bytes("INBOX", uid))
            check = await verify_archive(source, archive, deep=True)
            assert check.ok, check

            quiet = await backup(source, archive)  # nothing changed since
            assert quiet.fetched == 0
            assert quiet.summary()["content_changed"] == 0
        finally:
            await archive.close()

    asyncio.run(main())


def test_with_condstore_and_exact_sizes_a_size_change_is_enough(tmp_path: Path) -> None:
    source = _mailbox()  # CONDSTORE + QRESYNC, exact sizes

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            await backup(source, archive)
            source.replace_content_now("INBOX", 3, sample_message(300, 2000))  # same date
            report = await backup(source, archive)  # an incremental (CHANGEDSINCE) listing
            [inbox] = [f for f in report.folders if f.source == "INBOX"]
            assert inbox.content_changed == [3]
            assert inbox.fetched == 1
            assert (await verify_archive(source, archive, deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(main())


def test_mirror_replaces_the_old_copy(tmp_path: Path) -> None:
    source = _mailbox(EXCHANGE_LIKE)

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            await backup(source, archive, SyncPolicy(mirror=True))
            _refill(source, [1])
            report = await backup(source, archive, SyncPolicy(mirror=True))
            assert report.summary()["content_changed"] == 1
            rows = await _stored_rows(archive)
            assert len(rows) == 5
            assert all(m.origin is not None and m.gone_at is None for m in rows)
            assert (await verify_archive(source, archive, deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(main())


def test_a_dry_run_reports_content_changes_and_changes_nothing(tmp_path: Path) -> None:
    source = _mailbox(EXCHANGE_LIKE)

    async def main() -> None:
        from exoimap.app import plan_backup

        archive = ArchiveStore.open(tmp_path)
        try:
            await backup(source, archive)
            _refill(source, [5])
            planned = await plan_backup(source, archive)
            [inbox] = [f for f in planned.folders if f.source == "INBOX"]
            assert inbox.content_changed == [5]
            assert inbox.planned == 1
            assert all(m.origin is not None for m in await _stored_rows(archive))
        finally:
            await archive.close()

    asyncio.run(main())


# --- verify --repair -------------------------------------------------------------------------


def test_verify_deep_repair_fetches_what_sync_cannot_see(tmp_path: Path) -> None:
    """Same size and date, other bytes: only the SHA-256 tells; the repair fetches them
    again and keeps the differing copies, marked gone."""
    source = _mailbox(EXCHANGE_LIKE)

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            await backup(source, archive)
            _refill(source, [2, 5], same_size_and_date=True)
            assert (await backup(source, archive)).fetched == 0  # invisible to a sync

            shallow = await verify_archive(source, archive, repair_it=True)
            assert shallow.ok  # nothing a shallow check sees
            assert shallow.repaired is None

            check = await verify_archive(source, archive, deep=True, repair_it=True)
            [inbox] = check.folders
            assert inbox.hash_mismatch == [2, 5]
            assert not check.ok
            assert check.ok_after_repair
            assert check.repaired is not None
            assert check.repaired.fetched == 2

            rows = await _stored_rows(archive)
            assert len(rows) == 7
            kept = [m for m in rows if m.origin is None]
            assert len(kept) == 2
            assert all(m.gone_at is not None for m in kept)
            again = await verify_archive(source, archive, deep=True, repair_it=True)
            assert again.ok
            assert again.repaired is None
        finally:
            await archive.close()

    asyncio.run(main())


def test_repair_also_fetches_missing_messages_and_damaged_files(tmp_path: Path) -> None:
    source = _mailbox()

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path / "archive")
        try:
            await backup(source, archive)
            files = sorted((tmp_path / "archive" / "maildir").rglob("cur/*"))
            damaged = files[0]
            data = bytearray(damaged.read_bytes())
            data[-2] ^= 0x20
            damaged.write_bytes(bytes(data))
            files[1].unlink()
            check = await verify_archive(source, archive, deep=True, repair_it=True)
            assert len(check.files.corrupt) == 1
            assert len(check.files.missing) == 1
            assert check.repaired is not None
            assert check.repaired.fetched == 2
            assert check.ok_after_repair
            after = await verify_archive(source, archive, deep=True)
            assert after.sync.ok
            assert after.files.missing == []
            assert after.files.corrupt == []
        finally:
            await archive.close()

    asyncio.run(main())


class _CountingFolder(MemoryFolder):
    asked: ClassVar[list[bool | frozenset[int]]] = []

    async def list_messages(
        self,
        *,
        changed_since: int | None = None,
        detail: bool = False,
        size_and_date: bool | frozenset[int] = False,
        uids: UidRange | None = None,
    ) -> MessageListing:
        self.asked.append(size_and_date)
        return await super().list_messages(
            changed_since=changed_since, detail=detail, size_and_date=size_and_date, uids=uids
        )


class _CountingStore(WrappedStore):
    """Records what each listing of a folder asked for."""

    folder_class = _CountingFolder


def test_a_big_folder_is_sampled_and_listed_whole_once_the_sample_finds_a_change(
    tmp_path: Path,
) -> None:
    count = 4 * CONTENT_SAMPLE
    source = _filled(_CountingStore(capabilities=EXCHANGE_LIKE), count)

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            await backup(source, archive)
            _CountingFolder.asked.clear()
            assert (await backup(source, archive)).fetched == 0
            [sample] = _CountingFolder.asked
            assert isinstance(sample, frozenset)
            assert (
                len(sample) == 2 * CONTENT_SAMPLE
            )  # not every message: a no-change resync stays cheap
            assert set(range(count - CONTENT_SAMPLE + 1, count + 1)) <= sample  # the newest

            _refill(source, list(range(1, count + 1)))  # the whole mailbox generated again
            _CountingFolder.asked.clear()
            report = await backup(source, archive)
            assert report.summary()["content_changed"] == count
            assert _CountingFolder.asked[-1] is True  # the sample saw it: every message listed
            assert (await verify_archive(source, archive, deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(main())


def test_any_target_through_the_in_memory_sync_state() -> None:
    """The engine's rule does not depend on the archive: a mailbox-to-mailbox backup keeps
    the old copy too, no longer standing for the source UID."""
    from exoimap.store.sync_state import MemorySyncState
    from exoimap.sync import sync

    source = _mailbox(EXCHANGE_LIKE)
    target = MemoryStore()
    state = MemorySyncState()

    async def main() -> None:
        await sync(source, target, state)
        _refill(source, [3])
        report = await sync(source, target, state)
        assert report.summary()["content_changed"] == 1
        origins = state.snapshot()["INBOX"]
        assert len(target.record("INBOX").messages) == 6
        assert sorted(ref.uid for ref in origins.values()) == [1, 2, 3, 4, 5]
        [new_copy] = [uid for uid, ref in origins.items() if ref.uid == 3]
        assert target.message_bytes("INBOX", new_copy) == source.message_bytes("INBOX", 3)
        [old_copy] = set(target.record("INBOX").messages) - set(origins)
        assert target.message_bytes("INBOX", old_copy) != source.message_bytes("INBOX", 3)

    asyncio.run(main())


class _FailingOnce(MemoryFolder):
    fail_uid: ClassVar[int | None] = None

    async def fetch(self, uids: Sequence[int]) -> AsyncIterator[FetchedMessage]:
        async for message in super().fetch(uids):
            if message.uid == _FailingOnce.fail_uid:
                _FailingOnce.fail_uid = None
                raise MessageError(
                    "the server lost the connection", folder=self.name, uid=message.uid
                )
            yield message


class _FailingStore(WrappedStore):
    folder_class = _FailingOnce


def test_a_failed_fetch_after_the_old_copy_was_set_aside_is_fetched_by_the_next_run(
    tmp_path: Path,
) -> None:
    source = _filled(_FailingStore(capabilities=EXCHANGE_LIKE), 3)

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            await backup(source, archive)
            _refill(source, [2])
            _FailingOnce.fail_uid = 2
            failed = await backup(source, archive)
            assert failed.partial
            assert failed.fetched == 0
            rows = await _stored_rows(archive)
            assert [m.origin.uid for m in rows if m.origin] == [1, 3]  # 2 has no copy now

            again = await backup(source, archive)
            assert again.fetched == 1
            assert again.summary()["content_changed"] == 0  # nothing left to set aside
            rows = await _stored_rows(archive)
            assert sorted(m.origin.uid for m in rows if m.origin) == [1, 2, 3]
            assert len(rows) == 4  # and the old copy
            assert (await verify_archive(source, archive, deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(main())


def test_repair_fetches_a_copy_whose_date_differs_even_where_no_sample_looks(
    tmp_path: Path,
) -> None:
    source = _filled(MemoryStore(capabilities=EXCHANGE_LIKE), 4 * CONTENT_SAMPLE)

    async def main() -> None:
        archive = ArchiveStore.open(tmp_path)
        try:
            await backup(source, archive)
            data = source.message_bytes("INBOX", 1)
            source.replace_content_now("INBOX", 1, data, internal_date=T1)  # an old message
            check = await verify_archive(source, archive, repair_it=True)
            [inbox] = check.folders
            assert inbox.date_mismatch == [1]
            assert check.repaired is not None
            assert check.repaired.fetched == 1
            assert (await verify_archive(source, archive, deep=True)).ok
        finally:
            await archive.close()

    asyncio.run(main())
