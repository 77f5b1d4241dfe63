"""Helpers for CLI tests on a real Dovecot: an account signed in through the token-command
flow (a JWT Dovecot checks locally), a store on a user's mailbox, and filling folders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from exoimap.cli import main
from exoimap.net.credentials import PasswordCredentials
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.store.base import AppendItem
from exoimap.store.remote import RemoteImapStore

__all__ = ["add_dovecot_account", "dovecot_store", "fill_folders"]


async def dovecot_store(dovecot: DovecotServer, user: str) -> RemoteImapStore:
    return await RemoteImapStore.connect(
        Endpoint(dovecot.host, dovecot.imaps_port, TLSPolicy(ca_file=dovecot.ca_file)),
        PasswordCredentials(user, dovecot.password(user)),
    )


def add_dovecot_account(home: Path, dovecot: DovecotServer, name: str, user: str) -> None:
    """``exoimap account add NAME`` for ``user``'s mailbox on ``dovecot``."""
    token = home / f"{name}-token"
    token.parent.mkdir(parents=True, exist_ok=True)
    token.touch(mode=0o600)
    token.write_text(dovecot.mint_token(user, 3600).reveal())
    args = [
        "account", "add", name,
        "--email", user,
        "--flow", "token-command",
        "--token-command", f"cat {token}",
        "--imap-host", dovecot.host,
        "--imap-port", str(dovecot.imaps_port),
        "--ca-file", str(dovecot.ca_file),
    ]  # fmt: skip
    assert main(args) == 0


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
