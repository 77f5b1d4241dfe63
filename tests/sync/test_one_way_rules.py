"""The engine's rules for one-way copies (restore, migration): which messages, which
folders, nothing deleted, messages too large for the target skipped with their reason,
flags a target drops on APPEND set again, and the state told before every append."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterable, Mapping, Sequence
from contextlib import asynccontextmanager

from exoimap.store.base import AppendItem, Capabilities, FolderInfo, MessageInfo
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryFolder, MemoryStore
from exoimap.store.sync_state import MemorySyncState
from exoimap.sync import SyncPolicy, sync, verify

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
FLAGGED = frozenset({"\\Flagged", "\\Seen"})


def _source() -> MemoryStore:
    store = MemoryStore()
    store.create_folder_now("Work")
    for n in range(6):
        store.add_message(
            "INBOX" if n % 2 else "Work",
            sample_message(n, 300 + 5000 * n),
            flags=FLAGGED if n == 3 else frozenset(),
            internal_date=T0 + dt.timedelta(days=n),
        )
    return store


def _restored(info: FolderInfo, delimiter: str) -> str:
    return f"Restored{delimiter}{info.name.replace('/', delimiter)}"


def test_a_one_way_copy_selects_maps_and_never_deletes() -> None:
    async def main() -> None:
        source, target, state = _source(), MemoryStore(), MemorySyncState()
        policy = SyncPolicy(
            folder_map=_restored,
            select=lambda m: (
                m.internal_date is not None and m.internal_date >= T0 + dt.timedelta(days=2)
            ),
            track_deletions=False,
        )
        first = await sync(source, target, state, policy)
        assert first.ok
        assert sorted(target.folder_names()) == [
            "INBOX",
            "Restored",
            "Restored/INBOX",
            "Restored/Work",
        ]
        assert first.fetched == 4  # days 2..5
        # deleting on the source never deletes on the target of a one-way copy
        source.expunge_now("INBOX", [1])
        source.delete_folder_now("Work")
        again = await sync(source, target, state, policy)
        assert again.ok
        assert again.fetched == 0
        assert (again.folders_gone, again.folders_deleted) == ([], [])
        assert sum(f.gone + f.expunged for f in again.folders) == 0
        async with target.open_folder("Restored/Work") as work:
            assert len((await work.list_messages()).messages) == 2

    asyncio.run(main())


class _SmallTarget(MemoryStore):
    """A target that takes at most 6000 bytes a message (as Exchange has its limit)."""

    def __init__(self) -> None:
        super().__init__(capabilities=Capabilities(max_message_size=6000, records_origin=False))


def test_too_large_messages_are_skipped_with_their_reason() -> None:
    async def main() -> None:
        source, target, state = _source(), _SmallTarget(), MemorySyncState()
        planned = await sync(source, target, state, plan_only=True)
        report = await sync(source, target, state)
        assert not report.ok  # exit code 4 for the CLI
        skipped = {f.source: f.skipped for f in report.folders}
        assert {f: [uid for uid, _ in s] for f, s in skipped.items()} == {
            "INBOX": [2, 3],
            "Work": [2, 3],
        }
        assert "more than the target takes (6000 bytes)" in skipped["INBOX"][0][1]
        assert {f.source: f.skipped for f in planned.folders} == skipped
        assert report.fetched == 2  # the two small ones

    asyncio.run(main())


class _DropsFlagged(MemoryStore):
    """A target that ignores \\Flagged in APPEND, as Office 365 does."""

    def __init__(self) -> None:
        super().__init__(capabilities=Capabilities(append_drops_flags=frozenset({"\\Flagged"})))

    @asynccontextmanager
    async def _open(self, name: str):  # type: ignore[no-untyped-def,override]
        async with super()._open(name) as folder:
            yield _DroppingFolder(folder)


class _DroppingFolder:
    def __init__(self, inner: MemoryFolder) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def append(self, items: AsyncIterable[AppendItem]) -> list[int]:
        async def dropped() -> AsyncIterable[AppendItem]:
            async for item in items:
                item.flags = item.flags - {"\\Flagged"}
                yield item

        return await self._inner.append(dropped())


def test_flags_the_target_drops_on_append_are_set_again() -> None:
    async def main() -> None:
        source, target, state = _source(), _DropsFlagged(), MemorySyncState()
        assert (await sync(source, target, state)).ok
        assert (await verify(source, target, state)).ok  # \\Flagged is there
        async with target.open_folder("INBOX") as inbox:
            flags = [m.flags for m in (await inbox.list_messages()).messages]
        assert FLAGGED in flags

    asyncio.run(main())


class _Announced(MemorySyncState):
    def __init__(self) -> None:
        super().__init__()
        self.announced: list[tuple[str, int, list[tuple[int, int | None, str | None]]]] = []

    async def will_append(
        self, folder: str, uidnext: int, source_uidvalidity: int, messages: Sequence[MessageInfo]
    ) -> None:
        self.announced.append((folder, uidnext, [(m.uid, m.size, m.message_id) for m in messages]))

    async def appended(self, folder: str, origins: Mapping[int, object]) -> None:
        assert folder in {f for f, _n, _m in self.announced}  # announced first
        await super().appended(folder, origins)  # type: ignore[arg-type]


def test_the_state_hears_of_every_append_before_it_happens() -> None:
    async def main() -> None:
        source, target, state = _source(), MemoryStore(), _Announced()
        assert (await sync(source, target, state, SyncPolicy(batch_messages=2))).ok
        inbox = [a for a in state.announced if a[0] == "INBOX"]
        assert [uidnext for _f, uidnext, _m in inbox] == [1, 3]  # the target's UIDNEXT
        uids = [m[0] for _f, _n, batch in inbox for m in batch]
        assert uids == [1, 2, 3]
        assert all(size and message_id for _f, _n, batch in inbox for _u, size, message_id in batch)

    asyncio.run(main())
