"""RemoteImapStore passes the shared Store conformance suite against a real Dovecot, and
does what only a remote store does (move, UIDPLUS, CONDSTORE, the connection pool)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from exoimap.net.credentials import OAuth2Credentials, PasswordCredentials, StaticToken
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.store.base import AppendItem, SpecialUse, chunks_of
from exoimap.store.conformance import CHECKS, Check, run_check, sample_message
from exoimap.store.remote import RemoteImapStore


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=32) as server:
        yield server


def _factory(dovecot: DovecotServer, user: str, oauth: bool = False):  # type: ignore[no-untyped-def]
    endpoint = Endpoint(dovecot.host, dovecot.imaps_port, TLSPolicy(ca_file=dovecot.ca_file))
    creds = (
        OAuth2Credentials(user, StaticToken(dovecot.mint_token(user)))
        if oauth
        else PasswordCredentials(user, dovecot.password(user))
    )

    async def make() -> RemoteImapStore:
        return await RemoteImapStore.connect(endpoint, creds, max_connections=2)

    return make


# IMAP cannot carry every byte: a literal may not hold NUL (Dovecot sends 0x80 instead) and
# servers store lone LF as CRLF. check_append_fetch_exact appends such a message, so it runs
# here on IMAP-safe bytes (below) and the deviation itself is pinned by a test.
IMAP_SAFE_CHECKS = [c for c in CHECKS if c.__name__ != "check_append_fetch_exact"]


@pytest.mark.parametrize("check", IMAP_SAFE_CHECKS, ids=lambda c: c.__name__)
def test_conformance(check: Check, dovecot: DovecotServer) -> None:
    run_check(check, _factory(dovecot, dovecot.new_mailbox()))


def test_append_fetch_exact_with_imap_safe_bytes(dovecot: DovecotServer) -> None:
    datas = [
        sample_message(1),
        sample_message(2, 200_000),  # streamed in chunks
        b"X-Odd: \xff\r\nlone\rCR and 8-bit \xe4\xf6\xfc\r\n\r\nbody\r\n",
        sample_message(4, message_id=False),
    ]
    when = dt.datetime(2024, 3, 5, 14, 30, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    flags = frozenset({"\\Seen", "\\Flagged", "work"})

    async def check(store: RemoteImapStore) -> None:
        async def items():  # type: ignore[no-untyped-def]
            for data in datas:
                yield AppendItem(chunks_of(data, 4096), len(data), flags, when)

        async with store.open_folder("INBOX") as folder:
            uids = await folder.append(items())
            assert uids == sorted(uids)
            assert len(uids) == 4
            got = {}
            async for m in folder.fetch(list(reversed(uids))):
                got[m.uid] = b"".join([x async for x in m.chunks])
                assert m.flags == flags
                assert m.internal_date == when
                assert m.size == len(got[m.uid])
        assert [got[u] for u in uids] == datas

    run_check(check, _factory(dovecot, dovecot.new_mailbox()))  # type: ignore[arg-type]


def test_bytes_imap_cannot_carry_are_normalised(dovecot: DovecotServer) -> None:
    odd = b"X-Odd: \x00\xff\r\nbare LF\nend\r\n"

    async def check(store: RemoteImapStore) -> None:
        async def items():  # type: ignore[no-untyped-def]
            yield AppendItem(chunks_of(odd), len(odd))

        async with store.open_folder("INBOX") as folder:
            [uid] = await folder.append(items())
            async for m in folder.fetch([uid]):
                data = b"".join([x async for x in m.chunks])
        assert data == b"X-Odd: \x80\xff\r\nbare LF\r\nend\r\n"

    run_check(check, _factory(dovecot, dovecot.new_mailbox()))  # type: ignore[arg-type]


def test_capabilities_and_roles(dovecot: DovecotServer) -> None:
    async def check(store: RemoteImapStore) -> None:
        caps = store.capabilities
        assert caps.condstore
        assert caps.uidplus
        assert caps.move
        assert caps.custom_keywords
        assert caps.exact_sizes
        assert store.delimiter == "/"
        roles = {f.name: f.role for f in await store.list_folders()}
        assert roles["INBOX"] is SpecialUse.INBOX
        assert roles["Sent"] is SpecialUse.SENT
        assert roles["Trash"] is SpecialUse.TRASH
        assert roles["Drafts"] is SpecialUse.DRAFTS

    run_check(check, _factory(dovecot, dovecot.new_mailbox(), oauth=True))  # type: ignore[arg-type]


def test_move_reports_new_uids(dovecot: DovecotServer) -> None:
    async def check(store: RemoteImapStore) -> None:
        async def items():  # type: ignore[no-untyped-def]
            for n in range(3):
                data = sample_message(n)
                yield AppendItem(chunks=chunks_of(data), size=len(data))

        async with store.open_folder("INBOX") as inbox:
            uids = await inbox.append(items())
            mapping = await inbox.move(uids[:2], "Trash")
            assert sorted(mapping) == uids[:2]
            assert [m.uid for m in (await inbox.list_messages()).messages] == [uids[2]]
        async with store.open_folder("Trash") as trash:
            got = {}
            async for message in trash.fetch(list(mapping.values())):
                got[message.uid] = b"".join([c async for c in message.chunks])
        assert got == {mapping[uids[0]]: sample_message(0), mapping[uids[1]]: sample_message(1)}

    run_check(check, _factory(dovecot, dovecot.new_mailbox()))  # type: ignore[arg-type]
