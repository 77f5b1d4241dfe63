"""What a restore client sees of Exchange's APPEND rules: exoimap's own
:class:`~exoimap.store.remote.RemoteImapStore` (``append``) against the sandbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from exoimap.errors import AppendIncomplete, ErrorScope, MessageError, Throttled
from exoimap.net.credentials import OAuth2Credentials, StaticToken
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.exchange.config import ExchangeSettings, ThrottlePolicy
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.secrets import Secret
from exoimap.store.base import AppendItem, chunks_of
from exoimap.store.conformance import sample_message
from exoimap.store.remote import RemoteImapStore

pytestmark = pytest.mark.anyio

WHEN = dt.datetime(2023, 11, 2, 8, 15, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
SEEN, FLAGGED = "\\Seen", "\\Flagged"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def token(tenant: SandboxTenant, alice: str) -> Secret[str]:
    return Secret(tenant.user_token(alice))


@asynccontextmanager
async def exchange_store(
    tenant: SandboxTenant, alice: str, token: Secret[str], **settings: Any
) -> AsyncIterator[RemoteImapStore]:
    """RemoteImapStore on a server with fresh mailboxes and ``settings``."""
    with tenant.extra_server(ExchangeSettings.for_tests(**settings)) as server:
        endpoint = Endpoint(
            "127.0.0.1", server.port, TLSPolicy(ca_file=tenant.ca_file), read_timeout=10
        )
        credentials = OAuth2Credentials(alice, StaticToken(token))
        store = await RemoteImapStore.connect(endpoint, credentials)
        try:
            yield store
        finally:
            await store.close()


async def _items(datas: Sequence[bytes], flags: frozenset[str]) -> AsyncIterator[AppendItem]:
    for data in datas:
        yield AppendItem(chunks_of(data, 8192), len(data), flags, WHEN)


async def test_flagged_is_dropped_by_append_and_kept_by_store(
    tenant: SandboxTenant, alice: str, token: Secret[str]
) -> None:
    async with exchange_store(tenant, alice, token) as store:
        assert store.capabilities.append_drops_flags == {FLAGGED}
        async with store.open_folder("Archive") as folder:
            datas = [sample_message(n) for n in range(3)]
            uids = await folder.append(_items(datas, frozenset({SEEN, FLAGGED, "$MDNSent"})))
            listing = await folder.list_messages()
            assert {m.uid: m.flags for m in listing.messages} == {
                uid: {SEEN, "$MDNSent"} for uid in uids
            }
            await folder.set_flags({uids[1]: frozenset({SEEN, FLAGGED})})
            listing = await folder.list_messages()
            assert {m.uid: m.flags for m in listing.messages}[uids[1]] == {SEEN, FLAGGED}
            fetched = [(m.uid, m.internal_date) async for m in folder.fetch(uids)]
            assert fetched == [(uid, WHEN) for uid in uids]


async def test_oversize_message_is_a_message_error(
    tenant: SandboxTenant, alice: str, token: Secret[str]
) -> None:
    small, big = sample_message(1, 2_000), sample_message(2, 30_000)
    after = [sample_message(3), sample_message(4)]
    assert len(big) > 20_000 > max(len(small), *map(len, after))
    settings = {"max_receive_size": 20_000}
    async with (
        exchange_store(tenant, alice, token, **settings) as store,
        store.open_folder("INBOX") as folder,
    ):
        with pytest.raises(AppendIncomplete) as info:
            await folder.append(_items([small, big, *after], frozenset()))
        # Exchange goes on after the NO: every other message of the pipelined batch is
        # stored (and its UID known), the oversize one is not, the connection still works
        stored = info.value.uids
        assert stored[1] is None
        assert all(uid is not None for n, uid in enumerate(stored) if n != 1)
        [error] = info.value.failures
        assert isinstance(error, MessageError)
        assert "Maximum size of appendable message has been exceeded" in str(error)
        assert error.scope is ErrorScope.MESSAGE
        assert not error.retryable
        listing = await folder.list_messages()
        uids = [m.uid for m in listing.messages]
        assert uids == [uid for uid in stored if uid is not None]
        bodies = [b"".join([c async for c in m.chunks]) async for m in folder.fetch(uids)]
        assert bodies == [small, *after]
        assert len(await folder.append(_items([small], frozenset()))) == 1


async def test_throttled_append_tells_the_backoff(
    tenant: SandboxTenant, alice: str, token: Secret[str]
) -> None:
    policy = ThrottlePolicy(window_seconds=3600, max_messages=2, backoff_ms=1500)
    async with exchange_store(tenant, alice, token, throttle=policy) as store:
        async with store.open_folder("INBOX") as folder:
            datas = [sample_message(n) for n in range(3)]
            with pytest.raises(Throttled) as info:
                await folder.append(_items(datas, frozenset()))
            assert info.value.backoff == pytest.approx(1.5)
        assert (await store.folder_state("INBOX")).exists == 2
