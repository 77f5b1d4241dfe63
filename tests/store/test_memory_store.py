"""MemoryStore features beyond the Store contract: the sandbox server relies on them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from exoimap.errors import FolderError, FolderNotFound, MessageError, StoreError
from exoimap.store.base import Capabilities, SpecialUse
from exoimap.store.conformance import sample_message
from exoimap.store.memory import EventKind, MemoryStore, StoreEvent

DATE = dt.datetime(2023, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_uidvalidity_small_integers_from_configured_start() -> None:
    store = MemoryStore(uidvalidity_start=14)
    store.create_folder_now("Sent Items", role=SpecialUse.SENT)
    assert asyncio.run(store.folder_state("INBOX")).uidvalidity == 14
    assert asyncio.run(store.folder_state("Sent Items")).uidvalidity == 15
    roles = {f.name: f.role for f in asyncio.run(store.list_folders())}
    assert roles == {"INBOX": SpecialUse.INBOX, "Sent Items": SpecialUse.SENT}


def test_reset_uidvalidity_renumbers() -> None:
    store = MemoryStore()
    uids = [store.add_message("INBOX", sample_message(n)) for n in range(4)]
    store.expunge_now("INBOX", [uids[0], uids[2]])
    old = asyncio.run(store.folder_state("INBOX")).uidvalidity
    new = store.reset_uidvalidity("INBOX")
    state = asyncio.run(store.folder_state("INBOX"))
    assert new != old
    assert (state.uidvalidity, state.uidnext, state.exists) == (new, 3, 2)
    assert store.message_bytes("INBOX", 1) == sample_message(1)
    assert store.message_bytes("INBOX", 2) == sample_message(3)
    with pytest.raises(FolderError):
        store.reset_uidvalidity("INBOX", new)


def test_listener_sees_every_change_in_order() -> None:
    store = MemoryStore()
    events: list[StoreEvent] = []
    remove = store.add_listener(events.append)
    store.create_folder_now("A")
    uid = store.add_message("INBOX", sample_message(1))
    store.store_flags("INBOX", [uid], frozenset({"\\Seen"}), "add")
    store.store_flags("INBOX", [uid], frozenset({"\\Seen"}), "add")  # no change: no event
    store.move_now("INBOX", [uid], "A")
    store.rename_folder_now("A", "B")
    remove()
    store.add_message("INBOX", sample_message(2))
    assert [(e.kind, e.folder, e.uids) for e in events] == [
        (EventKind.FOLDER_CREATED, "A", ()),
        (EventKind.EXISTS, "INBOX", (1,)),
        (EventKind.FLAGS, "INBOX", (1,)),
        (EventKind.EXISTS, "A", (1,)),
        (EventKind.EXPUNGE, "INBOX", (1,)),
        (EventKind.FOLDER_RENAMED, "A", ()),
    ]
    assert events[2].flags == {"\\Seen"}
    assert events[-1].new_name == "B"


def test_watch_queue_delivers_to_another_task() -> None:
    async def main() -> list[EventKind]:
        store = MemoryStore()
        async with store.watch() as queue:

            async def other_connection() -> None:
                store.add_message("INBOX", sample_message(1))
                store.expunge_now("INBOX", [1])

            async with asyncio.TaskGroup() as tg:
                tg.create_task(other_connection())
            got = [queue.get_nowait().kind, queue.get_nowait().kind]
        store.add_message("INBOX", sample_message(2))
        assert queue.empty()
        return got

    assert asyncio.run(main()) == [EventKind.EXISTS, EventKind.EXPUNGE]


def test_copy_move_and_expunge_deleted() -> None:
    store = MemoryStore()
    store.create_folder_now("Archive")
    a = store.add_message("INBOX", sample_message(1), flags=["\\Seen"], internal_date=DATE)
    b = store.add_message("INBOX", sample_message(2), flags=["\\Deleted"])
    assert store.copy_now("INBOX", [a, 99], "Archive") == {a: 1}
    assert store.move_now("INBOX", [a], "Archive") == {a: 2}
    assert store.expunge_now("INBOX") == [b]
    assert asyncio.run(store.folder_state("INBOX")).exists == 0
    assert store.message_bytes("Archive", 2) == sample_message(1)
    with pytest.raises(MessageError):
        store.message_bytes("INBOX", a)
    with pytest.raises(StoreError):
        store.store_flags("Archive", [1], frozenset(), "toggle")


def test_folder_rules() -> None:
    store = MemoryStore()
    for bad in ("", "/a", "a/"):
        with pytest.raises(FolderError):
            store.create_folder_now(bad)
    with pytest.raises(FolderError):
        store.delete_folder_now("inbox")
    with pytest.raises(FolderError):
        store.rename_folder_now("INBOX", "X")
    store.create_folder_now("A")
    with pytest.raises(FolderError):
        store.rename_folder_now("A", "INBOX")
    with pytest.raises(FolderNotFound):
        store.add_message("Nope", b"x")


def test_limits_and_flag_policy() -> None:
    caps = Capabilities(custom_keywords=False, max_message_size=100)
    store = MemoryStore(capabilities=caps)
    with pytest.raises(MessageError):
        store.add_message("INBOX", b"x" * 101)
    uid = store.add_message("INBOX", b"x" * 100, flags=["\\SEEN", "work", "\\Recent"])
    listing = asyncio.run(_listing(store))
    assert listing == {uid: frozenset({"\\Seen"})}
    with pytest.raises(MessageError):
        store.add_message("INBOX", b"x", internal_date=dt.datetime(2020, 1, 1))  # naive


async def _listing(store: MemoryStore) -> dict[int, frozenset[str]]:
    async with store.open_folder("INBOX") as folder:
        listing = await folder.list_messages()
    return {m.uid: m.flags for m in listing.messages}


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    store = MemoryStore(uidvalidity_start=7)
    store.create_folder_now("Ünïcode/Sub")
    uid = store.add_message("Ünïcode/Sub", sample_message(1), flags=["work"], internal_date=DATE)
    store.add_message("INBOX", sample_message(1))  # same body: stored once
    store.add_message("INBOX", sample_message(2))
    store.add_message("INBOX", sample_message(3))
    store.expunge_now("INBOX", [3])
    store.save(tmp_path)
    assert len(list((tmp_path / "blobs").iterdir())) == 2
    loaded = MemoryStore.load(tmp_path)
    assert loaded.folder_names() == store.folder_names()
    for name in store.folder_names():
        assert asyncio.run(loaded.folder_state(name)) == asyncio.run(store.folder_state(name))
    assert loaded.message_bytes("Ünïcode/Sub", uid) == sample_message(1)
    listing = asyncio.run(_listing(loaded))
    assert listing == {1: frozenset(), 2: frozenset()}
    # new folders continue the UIDVALIDITY sequence
    loaded.create_folder_now("Later")
    assert asyncio.run(loaded.folder_state("Later")).uidvalidity == 10
    # a damaged index is a clear StoreError
    (tmp_path / "index.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(StoreError, match="unsupported mailbox format"):
        MemoryStore.load(tmp_path)
    (tmp_path / "index.json").write_text("{")
    with pytest.raises(StoreError, match="cannot load"):
        MemoryStore.load(tmp_path)
