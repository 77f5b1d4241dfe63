"""The client and RemoteImapStore against the sandbox Exchange Online server (real MSAL
tokens from the sandbox identity platform), with its faults: drops, throttling, token
expiry, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from exoimap.errors import ImapAuthenticationFailed, MessageError
from exoimap.net.credentials import OAuth2Credentials, StaticToken
from exoimap.net.imap import Endpoint, ImapClient, RetryPolicy
from exoimap.net.session import NetEvent
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.exchange.config import ExchangeSettings, ThrottlePolicy
from exoimap.sandbox.exchange.server import ExchangeControl
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.secrets import Secret
from exoimap.store.base import AppendItem, chunks_of
from exoimap.store.conformance import CHECKS, Check, run_check, sample_message
from exoimap.store.remote import RemoteImapStore

pytestmark = pytest.mark.anyio

ALICE = "alice@contoso.onmicrosoft.com"
BOB = "bob@contoso.onmicrosoft.com"


class SandboxTokens:
    """A delegated token per call, through real MSAL against the sandbox identity half."""

    def __init__(self, tenant: SandboxTenant, upn: str) -> None:
        self.tenant = tenant
        self.upn = upn
        self.calls = 0
        self.expires_at: float | None = None

    async def access_token(self) -> Secret[str]:
        self.calls += 1
        return Secret(await asyncio.to_thread(self.tenant.user_token, self.upn))


@pytest.fixture(scope="module")
def alice_token(sandbox_tenant: SandboxTenant) -> Secret[str]:
    return Secret(sandbox_tenant.user_token(ALICE))


@pytest.fixture
def fresh_server(sandbox_tenant: SandboxTenant) -> Iterator[ExchangeControl]:
    """A second Exchange server with empty mailboxes (the Exchange folder set only)."""
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests()) as control:
        yield control


def _endpoint(tenant: SandboxTenant, port: int | None = None) -> Endpoint:
    return Endpoint(
        "127.0.0.1", port or tenant.imap_port, TLSPolicy(ca_file=tenant.ca_file), read_timeout=10
    )


def _seed(control: ExchangeControl, count: int, size: int = 30_000) -> list[bytes]:
    datas = [sample_message(n, size + n * 1000) for n in range(count)]
    for data in datas:
        control.deliver(ALICE, data, folder="INBOX")
    return datas


async def _fetch_all(client: ImapClient, uids: range, each: object = None) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    async for m in client.fetch("INBOX", uids):
        assert m.uid not in out, "a message was delivered twice"
        out[m.uid] = b"".join([c async for c in m.chunks])
        if callable(each):
            each(m.uid)
    return out


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_remote_store_conformance_on_exchange(
    check: Check, sandbox_tenant: SandboxTenant, alice_token: Secret[str]
) -> None:
    # plain IMAP on APPEND: the suite expects every permanent flag kept, \Flagged too
    settings = ExchangeSettings.for_tests(append_drops_flags=frozenset())
    with sandbox_tenant.extra_server(settings) as control:
        endpoint = _endpoint(sandbox_tenant, control.port)
        creds = OAuth2Credentials(ALICE, StaticToken(alice_token))

        async def make() -> RemoteImapStore:
            return await RemoteImapStore.connect(endpoint, creds, max_connections=2)

        run_check(check, make)


async def test_exchange_capabilities(
    sandbox_tenant: SandboxTenant, alice_token: Secret[str]
) -> None:
    creds = OAuth2Credentials(ALICE, StaticToken(alice_token))
    store = await RemoteImapStore.connect(_endpoint(sandbox_tenant), creds)
    try:
        caps = store.capabilities
        assert store.exchange
        assert not caps.condstore
        assert not caps.custom_keywords
        assert "$MDNSent" in caps.permanent_flags
        assert not caps.exact_sizes
        roles = {f.role for f in await store.list_folders() if f.role is not None}
        assert len(roles) == 6  # inbox, sent, drafts, trash, junk, archive (by name)
    finally:
        await store.close()


async def test_wrong_user_is_explained(
    sandbox_tenant: SandboxTenant, alice_token: Secret[str]
) -> None:
    # alice's token used for bob's mailbox, without permission on it.
    client = ImapClient(_endpoint(sandbox_tenant), OAuth2Credentials(BOB, StaticToken(alice_token)))
    with pytest.raises(ImapAuthenticationFailed) as info:
        await client.session()
    assert "user=" in str(info.value)
    assert alice_token.reveal() not in str(info.value)


async def test_fetch_survives_drops_on_every_connection(
    sandbox_tenant: SandboxTenant, fresh_server: ExchangeControl
) -> None:
    datas = _seed(fresh_server, 12, size=40_000)
    events: list[NetEvent] = []
    tokens = SandboxTokens(sandbox_tenant, ALICE)
    retry = RetryPolicy(backoff_base=0.01, max_attempts=30)
    client = ImapClient(
        _endpoint(sandbox_tenant, fresh_server.port),
        OAuth2Credentials(ALICE, tokens),
        retry=retry,
        on_event=events.append,
    )
    fresh_server.faults.drop_after_bytes = 120_000  # every connection dies after 120 KB
    try:
        got = await _fetch_all(client, range(1, 13))
    finally:
        fresh_server.faults.clear()
        await client.close()
    assert [got[u] for u in range(1, 13)] == datas
    assert sum(e.kind == "retry" for e in events) >= 3
    assert any(e.kind == "resume" for e in events)


async def test_throttling_is_waited_out(
    sandbox_tenant: SandboxTenant, alice_token: Secret[str]
) -> None:
    throttle = ThrottlePolicy(window_seconds=0.3, max_messages=4, backoff_ms=120, bye=True)
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests(throttle=throttle)) as control:
        datas = _seed(control, 10, size=2_000)
        events: list[NetEvent] = []
        client = ImapClient(
            _endpoint(sandbox_tenant, control.port),
            OAuth2Credentials(ALICE, StaticToken(alice_token)),
            retry=RetryPolicy(fetch_batch=3, backoff_base=0.01),
            on_event=events.append,
        )
        async with client:
            got = await _fetch_all(client, range(1, 11))
    assert [got[u] for u in range(1, 11)] == datas
    throttled = [e for e in events if e.kind == "throttled"]
    assert throttled
    assert all(e.wait == pytest.approx(0.12) for e in throttled)


async def test_access_token_expiry_bye_resumes(
    sandbox_tenant: SandboxTenant, fresh_server: ExchangeControl
) -> None:
    datas = _seed(fresh_server, 10, size=5_000)
    tokens = SandboxTokens(sandbox_tenant, ALICE)
    events: list[NetEvent] = []
    client = ImapClient(
        _endpoint(sandbox_tenant, fresh_server.port),
        OAuth2Credentials(ALICE, tokens),
        retry=RetryPolicy(fetch_batch=2, fetch_depth=1, backoff_base=0.01),
        on_event=events.append,
    )
    advanced = 0.0

    def expire_after_fourth(uid: int) -> None:
        nonlocal advanced
        if uid == 4:
            advanced = 7200.0
            sandbox_tenant.admin.advance_clock(advanced)  # alice's token is now expired

    try:
        async with client:
            got = await _fetch_all(client, range(1, 11), expire_after_fourth)
    finally:
        sandbox_tenant.admin.advance_clock(-advanced)
    assert [got[u] for u in range(1, 11)] == datas
    retries = [e.detail for e in events if e.kind == "retry"]
    assert any("AccessTokenExpired" in d for d in retries)
    assert tokens.calls == 2


async def test_server_restart_mid_fetch(
    sandbox_tenant: SandboxTenant, fresh_server: ExchangeControl
) -> None:
    datas = _seed(fresh_server, 8, size=20_000)
    client = ImapClient(
        _endpoint(sandbox_tenant, fresh_server.port),
        OAuth2Credentials(ALICE, SandboxTokens(sandbox_tenant, ALICE)),
        retry=RetryPolicy(fetch_batch=2, fetch_depth=1, backoff_base=0.05),
    )

    def restart_at_third(uid: int) -> None:
        if uid == 3:
            fresh_server.restart()

    async with client:
        got = await _fetch_all(client, range(1, 9), restart_at_third)
    assert [got[u] for u in range(1, 9)] == datas
    assert client.sessions_opened == 2


async def test_append_learns_uids_and_flags_round_trip(
    sandbox_tenant: SandboxTenant, fresh_server: ExchangeControl, alice_token: Secret[str]
) -> None:
    creds = OAuth2Credentials(ALICE, StaticToken(alice_token))
    store = await RemoteImapStore.connect(_endpoint(sandbox_tenant, fresh_server.port), creds)
    try:
        async with store.open_folder("Archive") as folder:

            async def items():  # type: ignore[no-untyped-def]
                for n in range(3):
                    data = sample_message(n)
                    yield AppendItem(chunks_of(data), len(data), frozenset({"\\Seen"}))

            uids = await folder.append(items())
            assert uids == [1, 2, 3]
            await folder.set_flags({2: frozenset({"\\Flagged", "custom"})})
            listing = await folder.list_messages()
            flags = {m.uid: m.flags for m in listing.messages}
            assert flags == {1: {"\\Seen"}, 2: {"\\Flagged"}, 3: {"\\Seen"}}
    finally:
        await store.close()


async def test_exchange_quirks_are_handled(
    sandbox_tenant: SandboxTenant, alice_token: Secret[str]
) -> None:
    # Bare "[COPYUID ...]" lines, STATUS with a trailing space, estimated RFC822.SIZE.
    settings = ExchangeSettings.for_tests(
        bare_copyuid=True, status_trailing_space=True, estimated_rfc822_size=True
    )
    with sandbox_tenant.extra_server(settings) as control:
        datas = [sample_message(n, 3_000 + 7_000 * n) for n in range(3)]
        for data in datas:
            control.deliver(ALICE, data, folder="INBOX")
        creds = OAuth2Credentials(ALICE, StaticToken(alice_token))
        store = await RemoteImapStore.connect(_endpoint(sandbox_tenant, control.port), creds)
        try:
            assert (await store.folder_state("INBOX")).exists == 3
            async with store.open_folder("INBOX") as inbox:
                sizes = {}
                async for m in inbox.fetch([1, 2, 3]):
                    body = b"".join([c async for c in m.chunks])
                    assert m.size == len(body)
                    sizes[m.uid] = len(body)
                assert sizes == {u: len(d) for u, d in zip((1, 2, 3), datas, strict=True)}
                mapping = await inbox.move([1, 3], "Archive")
            assert sorted(mapping) == [1, 3]
            async with store.open_folder("Archive") as archive:
                moved = {m.uid async for m in archive.fetch(list(mapping.values()))}
            assert moved == set(mapping.values())
        finally:
            await store.close()


async def test_oversized_append_is_refused_before_upload(
    sandbox_tenant: SandboxTenant, fresh_server: ExchangeControl, alice_token: Secret[str]
) -> None:
    creds = OAuth2Credentials(ALICE, StaticToken(alice_token))
    store = await RemoteImapStore.connect(_endpoint(sandbox_tenant, fresh_server.port), creds)
    too_big = 150 * 1024 * 1024 + 1

    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body must not be read")
        yield b""  # pragma: no cover

    async def items() -> AsyncIterator[AppendItem]:
        yield AppendItem(never(), too_big)

    try:
        async with store.open_folder("INBOX") as folder:
            with pytest.raises(MessageError, match="larger than"):
                await folder.append(items())
            assert (await folder.state()).exists == 0  # and the connection still works
    finally:
        await store.close()
