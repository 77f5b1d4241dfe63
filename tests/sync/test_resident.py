"""What a resident process keeps between syncs (``exoimap.sync.resident``), against a real
Dovecot: one event loop, one signed-in connection per account, and when not to keep it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exoimap.app import resident
from exoimap.app.resident import KeptSources
from exoimap.config import AccountConfig
from exoimap.net.credentials import PasswordCredentials
from exoimap.net.imap import Endpoint
from exoimap.net.session import NetEvent
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.store.remote import RemoteImapStore


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=1) as server:
        yield server


class Connector:
    """Opens real stores to one Dovecot mailbox and counts how many it opened."""

    def __init__(self, dovecot: DovecotServer, user: str) -> None:
        self.endpoint = Endpoint(
            dovecot.host, dovecot.imaps_port, TLSPolicy(ca_file=dovecot.ca_file)
        )
        self.credentials = PasswordCredentials(user, dovecot.password(user))
        self.opened: list[RemoteImapStore] = []

    async def __call__(self, events: Callable[[NetEvent], None]) -> RemoteImapStore:
        store = await RemoteImapStore.connect(
            self.endpoint, self.credentials, max_connections=3, on_event=events
        )
        self.opened.append(store)
        return store


def _account(user: str, **changes: object) -> AccountConfig:
    return dataclasses.replace(AccountConfig(name="kept", email=user), **changes)  # type: ignore[arg-type]


def test_a_parked_store_is_reused_with_one_connection_and_the_new_sink(
    dovecot: DovecotServer,
) -> None:
    user = dovecot.new_mailbox()
    connect = Connector(dovecot, user)
    kept = KeptSources()
    first_events: list[NetEvent] = []
    second_events: list[NetEvent] = []

    async def main() -> None:
        store = await kept.take(_account(user), first_events.append, connect)
        # a big sync uses several connections at once
        async with store.open_folder("INBOX"), store.open_folder("INBOX"):
            pass
        assert store.connections == 2
        await kept.give_back(_account(user), store, clean=True)
        assert store.connections == 1  # parked with one connection, not max_connections
        first_events.clear()

        again = await kept.take(_account(user), second_events.append, connect)
        assert again is store
        assert [f.name for f in await again.list_folders()]  # the kept connection works
        assert not second_events  # ... without connecting or signing in again
        async with again.open_folder("INBOX"), again.open_folder("INBOX"):
            pass  # a second connection: its events go to this sync's sink
        await kept.give_back(_account(user), again, clean=True)
        await kept.close_all()

    asyncio.run(main())
    assert len(connect.opened) == 1
    assert kept.reused == 1
    assert not first_events  # events of the second sync do not reach the first's sink
    assert "connect" in [e.kind for e in second_events]
    assert kept.parked == 0


def test_an_edited_account_an_unclean_end_idleness_and_age_each_mean_a_new_connection(
    dovecot: DovecotServer,
) -> None:
    user = dovecot.new_mailbox()
    connect = Connector(dovecot, user)
    now = [0.0]
    kept = KeptSources(max_idle=600, clock=lambda: now[0])

    async def cycle(account: AccountConfig, *, clean: bool = True) -> RemoteImapStore:
        store = await kept.take(account, lambda _e: None, connect)
        await store.list_folders()
        await kept.give_back(account, store, clean=clean)
        return store

    async def main() -> None:
        first = await cycle(_account(user))
        edited = await cycle(_account(user, max_connections=2))
        assert edited is not first  # the config changed: the old connection was closed
        assert first.connections == 0
        failed = await cycle(_account(user, max_connections=2), clean=False)
        assert failed is edited
        assert failed.connections == 0  # not parked after a sync that did not end well
        fresh = await cycle(_account(user, max_connections=2))
        assert fresh is not failed
        now[0] += 601
        await kept.expire()
        assert kept.parked == 0
        assert fresh.connections == 0

        # Used every 5 minutes, a connection still signs in afresh once it is an hour old.
        account = _account(user, max_connections=2)
        stores = []
        for _ in range(13):
            stores.append(await cycle(account))
            now[0] += 300
        assert stores[0] is stores[11]  # 0 .. 55 minutes: the same connection
        assert stores[12] is not stores[0]  # at 60 minutes: a new one
        assert stores[0].connections == 0

    asyncio.run(main())
    assert len(connect.opened) == 5


def test_run_uses_the_resident_loop_when_given_and_a_new_one_otherwise() -> None:
    async def running_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    # the loops themselves are kept, so that no id can be reused between the runs
    outside = [resident.run(running_loop()) for _ in range(2)]
    with resident.resident() as state:
        inside = [resident.run(running_loop(), state) for _ in range(3)]
        beside = resident.run(running_loop())  # nobody passed the state: a loop of its own
        assert not inside[0].is_closed()  # still open between runs
    assert inside[0] is inside[1] is inside[2]
    assert beside is not inside[0]
    assert outside[0] is not outside[1]
    assert all(loop.is_closed() for loop in (*outside, inside[0], beside))


def test_an_index_stamp_is_trusted_once(tmp_path: Path) -> None:
    stamp = (1, 2, 3, 4, 5)
    with resident.resident() as state:
        assert state.trusted_index(tmp_path) is None
        state.remember_index(tmp_path, stamp)
        state.remember_index(tmp_path / "other", None)  # a sync that left no stamp
        assert state.trusted_index(tmp_path) == stamp
        assert state.trusted_index(tmp_path) is None  # taken: a failed sync keeps nothing
        assert state.trusted_index(tmp_path / "other") is None
