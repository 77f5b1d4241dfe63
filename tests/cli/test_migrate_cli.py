"""``exoimap migrate`` end to end: a Dovecot mailbox into the sandbox's Exchange Online, real
sign-in on both sides. ``Sent``/``Trash`` land in ``Sent Items``/``Deleted Items`` by their
special-use role, ``--map`` decides for the rest, a re-run copies what is new and brings flag
changes across, and nothing is copied twice."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from exoimap.cli import main
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.exchange.server import ExchangeControl
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.base import AppendItem, chunks_of
from exoimap.store.conformance import sample_message

from .dovecot_accounts import dovecot_store, fill_folders
from .sync_helpers import add_dovecot_account, isolated_home, signed_in_account

T0 = dt.datetime(2021, 6, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=4) as server:
        yield server


@pytest.fixture
def exchange(sandbox_tenant: SandboxTenant) -> Iterator[ExchangeControl]:
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests()) as control:
        yield control


def _fill(dovecot: DovecotServer, user: str, folders: dict[str, list[int]]) -> None:
    fill_folders(
        dovecot,
        user,
        {
            folder: [
                AppendItem(
                    chunks_of(data := sample_message(n, 400 + n)),
                    len(data),
                    frozenset({"\\Seen"}),
                    T0 + dt.timedelta(days=n),
                )
                for n in numbers
            ]
            for folder, numbers in folders.items()
        },
    )


def _counts(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


@pytest.mark.dovecot
def test_a_dovecot_mailbox_moves_into_exchange_by_role(
    sandbox_tenant: SandboxTenant,
    dovecot: DovecotServer,
    exchange: ExchangeControl,
    home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user = dovecot.new_mailbox()
    _fill(dovecot, user, {"INBOX": [1, 2], "Sent": [3, 4], "Trash": [5], "Old Stuff": [6]})
    add_dovecot_account(home, dovecot, user, "old")
    upn = signed_in_account(sandbox_tenant, "new", {}, exchange=exchange)
    capsys.readouterr()

    assert main(["migrate", "old", "new", "--map", "Old Stuff=Archive", "--dry-run"]) == 0
    assert "old: would migrate 6 messages" in _counts(capsys)
    assert main(["migrate", "old", "new", "--map", "Old Stuff=Archive"]) == 0
    assert "old: migrated 6 messages" in _counts(capsys)

    store = exchange.run(lambda: exchange.server.mailboxes.get(upn).store)
    counts = {name: len(store.record(name).messages) for name in store.folder_names()}
    assert counts["INBOX"] == 2
    assert counts["Sent Items"] == 2  # by the \Sent role
    assert counts["Deleted Items"] == 1  # by the \Trash role
    assert counts["Archive"] == 1  # by --map
    assert "Sent" not in counts
    assert "Trash" not in counts

    # again, with one new message and a flag change on the source: only those
    _fill(dovecot, user, {"INBOX": [7]})

    async def flag() -> None:
        source = await dovecot_store(dovecot, user)
        try:
            async with source.open_folder("Sent") as sent:
                uid = (await sent.list_messages()).messages[0].uid
                await sent.set_flags({uid: frozenset({"\\Seen", "\\Flagged"})})
        finally:
            await source.close()

    asyncio.run(flag())
    assert main(["migrate", "old", "new", "--map", "Old Stuff=Archive"]) == 0
    assert "old: migrated 1 message (" in (out := _counts(capsys))
    assert "1 flag change " in out
    assert len(store.record("INBOX").messages) == 3
    flagged = [m for m in store.record("Sent Items").messages.values() if "\\Flagged" in m.flags]
    assert len(flagged) == 1
