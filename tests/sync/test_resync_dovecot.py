"""The quick resync against a real Dovecot (CONDSTORE + QRESYNC): a no-change run selects no
folder, and a flag change or an expunge made by another client still gets its folder synced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import ClassVar

import pytest

from exoimap.app import backup
from exoimap.app import verify_archive as verify
from exoimap.net.credentials import PasswordCredentials
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import AppendItem, chunks_of
from exoimap.store.conformance import sample_message
from exoimap.store.remote import RemoteFolder, RemoteImapStore
from exoimap.sync import SyncReport


class SelectCounting(RemoteImapStore):
    """A RemoteImapStore that records the folders it opens (each one a SELECT)."""

    opened: ClassVar[list[str]] = []

    def open_folder(self, name: str) -> AbstractAsyncContextManager[RemoteFolder]:
        self.opened.append(name)
        return self._counted(name)

    @asynccontextmanager
    async def _counted(self, name: str) -> AsyncIterator[RemoteFolder]:
        async with super().open_folder(name) as folder:
            yield folder


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=2) as server:
        yield server


async def _connect(
    dovecot: DovecotServer, user: str, cls: type[RemoteImapStore]
) -> RemoteImapStore:
    endpoint = Endpoint(dovecot.host, dovecot.imaps_port, TLSPolicy(ca_file=dovecot.ca_file))
    creds = PasswordCredentials(user, dovecot.password(user))
    return await cls.connect(endpoint, creds, max_connections=2)


async def _items(numbers: range) -> AsyncIterator[AppendItem]:
    for n in numbers:
        data = sample_message(n)
        yield AppendItem(chunks=chunks_of(data), size=len(data))


def test_quick_resync_on_dovecot(dovecot: DovecotServer, tmp_path: Path) -> None:
    user = dovecot.new_mailbox()

    async def main() -> None:
        other = await _connect(dovecot, user, RemoteImapStore)  # "another client"
        source = await _connect(dovecot, user, SelectCounting)
        assert source.capabilities.qresync
        try:
            await other.create_folder("Projects")
            for name, numbers in (("INBOX", range(3)), ("Projects", range(10, 14))):
                async with other.open_folder(name) as folder:
                    await folder.append(_items(numbers))

            async def sync() -> tuple[SyncReport, list[str]]:
                SelectCounting.opened = []
                archive = ArchiveStore.open(tmp_path, fsync_mode="none")
                try:
                    report = await backup(source, archive)
                    opened = SelectCounting.opened
                    SelectCounting.opened = []
                    assert (await verify(source, archive, deep=True)).ok
                    return report, opened
                finally:
                    await archive.close()

            first, opened = await sync()
            assert first.summary()["fetched"] == 7
            assert {"INBOX", "Projects"} <= set(opened)  # with Dovecot's own Drafts, Sent, ...

            again, opened = await sync()
            assert opened == []
            assert again.ok
            assert again.summary()["fetched"] == 0

            async with other.open_folder("Projects") as folder:
                await folder.set_flags({2: frozenset({"\\Flagged"})})
            flagged, opened = await sync()
            assert opened == ["Projects"]
            assert flagged.summary()["flags_changed"] == 1

            async with other.open_folder("INBOX") as folder:
                await folder.expunge([1])
            expunged, opened = await sync()
            assert opened == ["INBOX"]
            assert expunged.summary()["gone"] == 1
        finally:
            await source.close()
            await other.close()

    asyncio.run(main())
