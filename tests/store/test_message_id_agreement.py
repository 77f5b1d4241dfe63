"""Every store sees the same Message-ID in the same bytes (re-matching after a UIDVALIDITY
change depends on it): the memory store, the archive's write path, the remote store's
APPEND sniffer and, on a real Dovecot, the remote store's listing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from exoimap.net.credentials import PasswordCredentials
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.protocol.headers import HEADER_SCAN_LIMIT, parse_message_id
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.store._remote_append import Sniffer
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import AppendItem, chunks_of
from exoimap.store.memory import MemoryStore
from exoimap.store.remote import RemoteImapStore

_FILLER = b"X-Filler: " + b"f" * 70 + b"\r\n"
#: (name, message, Message-ID every store must see)
MESSAGES = [
    ("plain", b"Message-ID: <a@b>\r\nSubject: s\r\n\r\nbody\r\n", "<a@b>"),
    ("folded", b"From: x\r\nMessage-Id:\r\n <folded@x>\r\nTo: y\r\n\r\nb\r\n", "<folded@x>"),
    ("lowercase", b"message-id: <low@x>\r\n\r\nb\r\n", "<low@x>"),
    ("extra blanks", b"Message-ID:   <  sp @ x >  (c)\r\n\r\nb\r\n", "<sp@x>"),
    ("no header", b"\r\nMessage-ID: <in-body@x>\r\n", None),
    ("no field", b"Subject: none\r\n\r\nb\r\n", None),
    ("bare id", b"Message-ID: bare@x\r\n\r\nb\r\n", "<bare@x>"),
    (
        "header past 64 KiB",
        _FILLER * (HEADER_SCAN_LIMIT // len(_FILLER) + 1) + b"Message-ID: <late@x>\r\n\r\nb\r\n",
        None,
    ),
]
IDS = [name for name, _, _ in MESSAGES]
CHUNK_SIZES = [1, 5, 4096, 1 << 20]


async def _items(data: bytes, size: int) -> AsyncIterator[AppendItem]:
    yield AppendItem(chunks_of(data, size), len(data))


@pytest.mark.parametrize(("name", "data", "expected"), MESSAGES, ids=IDS)
def test_parser_and_memory_store(name: str, data: bytes, expected: str | None) -> None:
    assert parse_message_id(data) == expected
    store = MemoryStore()
    uid = store.add_message("INBOX", data)

    async def listed() -> str | None:
        async with store.open_folder("INBOX") as folder:
            listing = await folder.list_messages(detail=True)
        return {m.uid: m.message_id for m in listing.messages}[uid]

    assert asyncio.run(listed()) == expected


@pytest.mark.parametrize(("name", "data", "expected"), MESSAGES, ids=IDS)
@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_archive_write_path(
    name: str, data: bytes, expected: str | None, size: int, tmp_path: Path
) -> None:
    async def go() -> list[str | None]:
        archive = ArchiveStore.open(tmp_path / "archive")
        try:
            async with archive.open_folder("INBOX") as folder:
                await folder.append(_items(data, size))
                listing = await folder.list_messages(detail=True)
        finally:
            await archive.close()
        return [m.message_id for m in listing.messages]

    assert asyncio.run(go()) == [expected]


@pytest.mark.parametrize(("name", "data", "expected"), MESSAGES, ids=IDS)
@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_remote_append_sniffer(name: str, data: bytes, expected: str | None, size: int) -> None:
    async def go() -> tuple[str | None, bytes]:
        sniffer = Sniffer(chunks_of(data, size), None)
        passed = b"".join([bytes(c) async for c in sniffer.chunks()])
        return sniffer.message_id, passed

    assert asyncio.run(go()) == (expected, data)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=2) as server:
        yield server


def test_remote_listing_on_dovecot(dovecot: DovecotServer) -> None:
    """The listing reads ``BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]``, which cannot tell where
    in the header the field was: a Message-ID past the first 64 KiB is the one case where
    it sees more than the other views (see protocol.headers)."""
    user = dovecot.new_mailbox()
    endpoint = Endpoint(dovecot.host, dovecot.imaps_port, TLSPolicy(ca_file=dovecot.ca_file))
    within = [m for m in MESSAGES if m[0] != "header past 64 KiB"]

    async def go() -> list[str | None]:
        store = await RemoteImapStore.connect(
            endpoint, PasswordCredentials(user, dovecot.password(user)), max_connections=1
        )
        try:
            async with store.open_folder("INBOX") as folder:
                for _, data, _ in within:
                    await folder.append(_items(data, 4096))
                listing = await folder.list_messages(detail=True)
        finally:
            await store.close()
        return [m.message_id for m in listing.messages]

    assert asyncio.run(go()) == [expected for _, _, expected in within]
