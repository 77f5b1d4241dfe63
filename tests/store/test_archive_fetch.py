"""Reading messages back from the archive: a fetch reads the first chunk of many messages
in one hop to the archive's worker thread, and every message still comes back whole, in
order, whatever its size, with a file that cannot be read reported as that message's
error."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from exoimap.errors import MessageError
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import AppendItem, chunks_of
from exoimap.store.conformance import sample_message

DATE = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
# small ones, and ones of several 256 KiB chunks, 6 MB in all: more than one read-ahead
SIZES = [200, 300_000, 1_000, 700_000, 50] * 6


def _messages() -> list[bytes]:
    return [sample_message(n, size) for n, size in enumerate(SIZES)]


async def _archive_with(root: Path, messages: list[bytes]) -> list[int]:
    store = ArchiveStore.open(root, fsync_mode="none")
    try:
        async with store.open_folder("INBOX") as folder:

            async def items() -> AsyncIterator[AppendItem]:
                for data in messages:
                    yield AppendItem(chunks_of(data), len(data), internal_date=DATE)

            return await folder.append(items())
    finally:
        await store.close()


async def _read_all(root: Path, uids: list[int]) -> list[tuple[int, bytes]]:
    store = ArchiveStore.open(root, create=False)
    try:
        async with store.open_folder("INBOX") as folder:
            return [
                (message.uid, b"".join([chunk async for chunk in message.chunks]))
                async for message in folder.fetch(uids)
            ]
    finally:
        await store.close()


def test_every_message_comes_back_whole_and_in_order(tmp_path: Path) -> None:
    messages = _messages()
    uids = asyncio.run(_archive_with(tmp_path, messages))
    read = asyncio.run(_read_all(tmp_path, uids))
    assert [uid for uid, _ in read] == uids
    assert [data for _, data in read] == messages


def test_a_file_that_cannot_be_read_is_that_messages_error(tmp_path: Path) -> None:
    messages = _messages()[:5]
    uids = asyncio.run(_archive_with(tmp_path, messages))
    files = sorted((tmp_path / "maildir" / "cur").iterdir(), key=lambda p: p.name)
    victim = next(p for p in files if p.read_bytes() == messages[2])
    victim.unlink()
    victim.mkdir()  # still there by name, but no longer a file anyone can read

    got: list[int] = []

    async def read_all() -> None:
        store = ArchiveStore.open(tmp_path, create=False)
        try:
            async with store.open_folder("INBOX") as folder:
                async for message in folder.fetch(uids):
                    body = b"".join([chunk async for chunk in message.chunks])
                    assert body == messages[uids.index(message.uid)]
                    got.append(message.uid)
        finally:
            await store.close()

    with pytest.raises(MessageError) as failed:
        asyncio.run(read_all())
    assert failed.value.uid == uids[2]
    assert got == uids[:2]  # the ones before it came back whole
