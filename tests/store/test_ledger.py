"""The ledger: a one-way copy into a real mailbox (Dovecot) that is killed at every append,
in the window that matters (after the server stored the messages, before the ledger heard
their UIDs) and before the APPEND went out, resumes without a duplicate or a loss."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from exoimap.errors import StoreError
from exoimap.net.credentials import PasswordCredentials
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.store.base import Store
from exoimap.store.conformance import sample_message
from exoimap.store.ledger import Ledger
from exoimap.store.memory import MemoryStore
from exoimap.store.remote import RemoteImapStore
from exoimap.sync import SyncPolicy, SyncReport, sync, verify

from ..sync.scenarios import in_child

POLICY = SyncPolicy(batch_messages=3, track_deletions=False, max_parallel_folders=1)
T0 = dt.datetime(2023, 7, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=8) as server:
        yield server


def _source() -> MemoryStore:
    store = MemoryStore()
    store.create_folder_now("Projects")
    for n in range(11):
        store.add_message(
            "Projects" if n % 3 else "INBOX",
            # every third message has no Message-ID: recognised by size and date alone
            sample_message(n, 200 + 90 * n, message_id=n % 3 != 1),
            flags=frozenset({"\\Seen"}) if n % 2 else frozenset(),
            internal_date=T0 + dt.timedelta(hours=n),
        )
    return store


async def _target(dovecot: DovecotServer, user: str) -> RemoteImapStore:
    return await RemoteImapStore.connect(
        Endpoint(dovecot.host, dovecot.imaps_port, TLSPolicy(ca_file=dovecot.ca_file)),
        PasswordCredentials(user, dovecot.password(user)),
        max_connections=1,
    )


async def _copy(source: Store, dovecot: DovecotServer, user: str, ledger_path: Path) -> SyncReport:
    target = await _target(dovecot, user)
    ledger = await Ledger.open(ledger_path)
    try:
        return await sync(source, target, ledger, POLICY)
    finally:
        await ledger.close()
        await target.close()


async def _contents(store: Store) -> Counter[tuple[str, bytes]]:
    found: Counter[tuple[str, bytes]] = Counter()
    for info in await store.list_folders():
        async with store.open_folder(info.name) as folder:
            listing = await folder.list_messages()
            async for message in folder.fetch([m.uid for m in listing.messages]):
                found[(info.name, b"".join([c async for c in message.chunks]))] += 1
    return found


def _die_on(method: str, k: int) -> None:
    """In a child: the ``k``-th call of ``Ledger.<method>`` kills the process first."""
    original = getattr(Ledger, method)
    calls = [0]

    async def dying(self: Ledger, *args: object) -> object:
        calls[0] += 1
        if calls[0] == k:
            os._exit(137)
        return await original(self, *args)

    setattr(Ledger, method, dying)


@pytest.mark.dovecot
@pytest.mark.parametrize(
    "window",
    ["appended", "will_append"],
    ids=["killed after the server stored", "killed before the APPEND"],
)
def test_killed_at_every_append_then_resumed_copies_each_message_once(
    tmp_path: Path, dovecot: DovecotServer, window: str
) -> None:
    source = _source()
    user = dovecot.new_mailbox()
    ledger = tmp_path / "ledger.sqlite"
    # each run gets one append through, then dies: after the server stored the next batch,
    # or right before sending it
    die_at = 1 if window == "appended" else 2
    kills = 0
    for _ in range(20):

        def child() -> None:
            _die_on(window, die_at)
            report = asyncio.run(_copy(source, dovecot, user, ledger))
            os._exit(0 if report.ok else 3)

        status = in_child(child)
        if status == 0:
            break  # this run got through: every append happened
        assert status == 137, f"the child failed for another reason ({status})"
        kills += 1
    assert kills >= 4
    final = asyncio.run(_copy(source, dovecot, user, ledger))
    assert final.ok
    assert final.fetched == 0  # nothing left to do, nothing done twice

    async def check() -> None:
        target = await _target(dovecot, user)
        opened = await Ledger.open(ledger)
        try:
            copied = await _contents(target)
            wanted = await _contents(source)
            assert copied - Counter({k: v for k, v in copied.items() if k not in wanted}) == wanted
            assert all(count == 1 for count in copied.values())
            assert (await verify(source, target, opened, deep=True)).ok
        finally:
            await opened.close()
            await target.close()

    asyncio.run(check())


def test_a_damaged_ledger_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"this is not a database" * 100)

    async def main() -> None:
        with pytest.raises(StoreError, match="the sync ledger failed while opening"):
            await Ledger.open(path)

    asyncio.run(main())


def test_the_ledger_file_is_private(tmp_path: Path) -> None:
    async def main() -> None:
        ledger = await Ledger.open(tmp_path / "deep" / "ledger.sqlite")
        await ledger.close()

    old = os.umask(0o022)
    try:
        asyncio.run(main())
    finally:
        os.umask(old)
    assert (tmp_path / "deep").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "deep" / "ledger.sqlite").stat().st_mode & 0o777 == 0o600
