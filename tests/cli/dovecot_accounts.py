"""Helpers for CLI tests on a real Dovecot: a store on a user's mailbox, and filling its
folders (the account itself: ``sync_helpers.add_dovecot_account``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

from exoimap.net.credentials import PasswordCredentials
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.store.base import AppendItem
from exoimap.store.remote import RemoteImapStore

__all__ = ["dovecot_store", "fill_folders"]


async def dovecot_store(dovecot: DovecotServer, user: str) -> RemoteImapStore:
    return await RemoteImapStore.connect(
        Endpoint(dovecot.host, dovecot.imaps_port, TLSPolicy(ca_file=dovecot.ca_file)),
        PasswordCredentials(user, dovecot.password(user)),
    )


def fill_folders(
    dovecot: DovecotServer, user: str, folders: Mapping[str, Sequence[AppendItem]]
) -> None:
    """Append the items to each folder of ``user``'s mailbox (created when missing)."""

    async def fill() -> None:
        store = await dovecot_store(dovecot, user)
        try:
            existing = {info.name for info in await store.list_folders()}
            for folder, items in folders.items():
                if folder not in existing:
                    await store.create_folder(folder)

                async def stream(items: Sequence[AppendItem] = items) -> AsyncIterator[AppendItem]:
                    for item in items:
                        yield item

                async with store.open_folder(folder) as opened:
                    await opened.append(stream())
        finally:
            await store.close()

    asyncio.run(fill())
