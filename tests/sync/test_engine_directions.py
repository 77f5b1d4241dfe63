"""One engine, every direction: memory -> archive -> Dovecot -> the sandbox's Exchange ->
memory, each store once a source and once a target, through real servers.

Every hop is the same :func:`exoimap.sync.sync`; the archive remembers the pair in its
index, every other target in a :class:`MemorySyncState`. After each hop the target holds
exactly the source's messages: the same bytes, internal dates and flags (those the target
can keep: Exchange keeps no keywords). A rerun changes nothing, and a second round of
changes (new mail, a flag change, a deletion, with ``mirror``) travels the whole chain.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from exoimap.net.credentials import OAuth2Credentials, PasswordCredentials, StaticToken
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.exchange.server import ExchangeControl
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.secrets import Secret
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import Store, SyncState
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryStore
from exoimap.store.remote import RemoteImapStore
from exoimap.store.sync_state import MemorySyncState
from exoimap.sync import SyncPolicy, SyncReport, sync, verify

ALICE = "alice@contoso.onmicrosoft.com"
FOLDERS = ("INBOX", "Projects", "Projects/2024", "Notes v1.2")
SEEN, FLAGGED = "\\Seen", "\\Flagged"
# One message's worth of what a store must carry: (bytes, internal date, flags).
Content = tuple[bytes, dt.datetime, frozenset[str]]


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=4) as server:
        yield server


@pytest.fixture
def exchange(sandbox_tenant: SandboxTenant) -> Iterator[ExchangeControl]:
    """A second Exchange server with empty mailboxes, so the test owns alice's there."""
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests()) as control:
        yield control


def _original() -> MemoryStore:
    store = MemoryStore()
    when = dt.datetime(2024, 3, 5, 14, 30, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    number = 0
    for folder in FOLDERS:
        if folder != "INBOX":
            store.create_folder_now(folder)
        for offset in range(4):
            number += 1
            flags = [frozenset(), frozenset({SEEN}), frozenset({SEEN, FLAGGED, "work"})][number % 3]
            store.add_message(
                folder,
                sample_message(number, 300 + 7000 * offset, message_id=number % 5 != 0),
                flags=flags,
                internal_date=when + dt.timedelta(days=number),
            )
    return store


async def _contents(store: Store, folder: str) -> Counter[Content]:
    async with store.open_folder(folder) as opened:
        listing = await opened.list_messages()
        found: Counter[Content] = Counter()
        async for message in opened.fetch([m.uid for m in listing.messages]):
            body = b"".join([chunk async for chunk in message.chunks])
            found[(body, message.internal_date, message.flags)] += 1
    return found


def _as_kept_by(target: Store, contents: Counter[Content]) -> Counter[Content]:
    caps = target.capabilities
    if caps.custom_keywords:
        return contents
    return Counter({(b, d, f & caps.permanent_flags): n for (b, d, f), n in contents.items()})


@dataclass
class Hop:
    name: str
    source: Store
    target: Store
    state: SyncState


@dataclass
class Chain:
    original: MemoryStore
    hops: list[Hop]

    async def run(self, policy: SyncPolicy) -> list[SyncReport]:
        reports = []
        for hop in self.hops:
            report = await sync(hop.source, hop.target, hop.state, policy)
            assert report.ok, (hop.name, [e for f in report.folders for e in f.errors])
            reports.append(report)
        return reports

    async def check(self) -> None:
        """Each target holds exactly what its source holds (as far as it can keep it)."""
        for hop in self.hops:
            source_names = {info.name for info in await hop.source.list_folders()}
            for folder in sorted(source_names & set(FOLDERS)):
                target_folder = _name_in(hop.target, folder)
                expected = _as_kept_by(hop.target, await _contents(hop.source, folder))
                assert await _contents(hop.target, target_folder) == expected, (hop.name, folder)
            assert (await verify(hop.source, hop.target, hop.state, deep=True)).ok, hop.name


def _name_in(store: Store, name: str) -> str:
    """The chain's folder names in a store whose delimiter is ``.`` (the last hop)."""
    if store.delimiter == "/":
        return name
    return name.replace(".", "\u2024").replace("/", store.delimiter)


@asynccontextmanager
async def _chain(
    tmp_path: Path, dovecot: DovecotServer, exchange: ExchangeControl, tenant: SandboxTenant
) -> AsyncIterator[Chain]:
    original = _original()
    async with AsyncExitStack() as stack:
        archive = ArchiveStore.open(tmp_path / "archive", fsync_mode="none")
        stack.push_async_callback(archive.close)
        user = dovecot.new_mailbox()
        mailbox = await RemoteImapStore.connect(
            Endpoint(dovecot.host, dovecot.imaps_port, TLSPolicy(ca_file=dovecot.ca_file)),
            PasswordCredentials(user, dovecot.password(user)),
            max_connections=2,
        )
        stack.push_async_callback(mailbox.close)
        token = Secret(await asyncio.to_thread(tenant.user_token, ALICE))
        cloud = await RemoteImapStore.connect(
            Endpoint("127.0.0.1", exchange.port, TLSPolicy(ca_file=tenant.ca_file)),
            OAuth2Credentials(ALICE, StaticToken(token)),
            max_connections=2,
        )
        stack.push_async_callback(cloud.close)
        back_home = MemoryStore(delimiter=".")
        yield Chain(
            original,
            [
                Hop("backup: memory -> archive", original, archive, archive.sync_state()),
                Hop("restore: archive -> Dovecot", archive, mailbox, MemorySyncState()),
                Hop("migrate: Dovecot -> Exchange", mailbox, cloud, MemorySyncState()),
                Hop("export: Exchange -> memory", cloud, back_home, MemorySyncState()),
            ],
        )


def _run(
    tmp_path: Path,
    dovecot: DovecotServer,
    exchange: ExchangeControl,
    tenant: SandboxTenant,
    body: Callable[[Chain], Awaitable[None]],
) -> None:
    async def main() -> None:
        async with _chain(tmp_path, dovecot, exchange, tenant) as chain:
            await body(chain)

    asyncio.run(main())


@pytest.mark.dovecot
def test_mail_travels_every_direction_byte_exact(
    tmp_path: Path,
    dovecot: DovecotServer,
    exchange: ExchangeControl,
    sandbox_tenant: SandboxTenant,
) -> None:
    async def body(chain: Chain) -> None:
        first = await chain.run(SyncPolicy(batch_messages=5))
        assert [r.fetched for r in first] == [16, 16, 16, 16]
        await chain.check()
        # what came back home is what left, less the keywords Exchange cannot keep
        home = chain.hops[-1].target
        for folder in FOLDERS:
            original = _as_kept_by(home, await _contents(chain.original, folder))
            original = Counter({(b, d, f - {"work"}): n for (b, d, f), n in original.items()})
            assert await _contents(home, _name_in(home, folder)) == original, folder

        again = await chain.run(SyncPolicy())
        assert [(r.fetched, sum(f.flags_changed for f in r.folders)) for r in again] == [(0, 0)] * 4

        source = chain.original
        source.add_message("Projects/2024", sample_message(99, 4321), flags=frozenset({SEEN}))
        inbox = [m.uid for m in (await _listing(source, "INBOX"))]
        source.store_flags("INBOX", [inbox[0]], frozenset({FLAGGED}), mode="add")
        source.expunge_now("INBOX", [inbox[1]])
        changed = await chain.run(SyncPolicy(mirror=True))
        for report in changed:
            assert report.fetched == 1
            assert sum(f.flags_changed for f in report.folders) == 1
            assert sum(f.expunged for f in report.folders) == 1
        await chain.check()

    _run(tmp_path, dovecot, exchange, sandbox_tenant, body)


async def _listing(store: Store, folder: str) -> list[object]:
    async with store.open_folder(folder) as opened:
        return list((await opened.list_messages()).messages)
