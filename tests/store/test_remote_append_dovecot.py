"""RemoteImapStore's APPEND pipeline against a real Dovecot: MULTIAPPEND groups, streamed
large messages, synchronising literals, and a message the server refuses in the middle of
a pipeline (Dovecot refuses a keyword longer than its ``mail_max_keyword_length``, 50)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest

from exoimap.errors import AppendIncomplete
from exoimap.net.credentials import PasswordCredentials
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.store._remote_append import BUFFERED_MESSAGE
from exoimap.store.base import AppendItem, MessageRef, chunks_of
from exoimap.store.conformance import sample_message
from exoimap.store.remote import RemoteFolder, RemoteImapStore

BASE = dt.datetime(2021, 6, 1, 9, 30, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
TOO_LONG = "k" * 60  # over Dovecot's default mail_max_keyword_length (50)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=12) as server:
        yield server


async def _store(dovecot: DovecotServer, ignore: Sequence[str]) -> RemoteImapStore:
    user = dovecot.new_mailbox()
    endpoint = Endpoint(dovecot.host, dovecot.imaps_port, TLSPolicy(ca_file=dovecot.ca_file))
    return await RemoteImapStore.connect(
        endpoint,
        PasswordCredentials(user, dovecot.password(user)),
        max_connections=1,
        ignore_extensions=tuple(ignore),
    )


def _flags(n: int) -> frozenset[str]:
    flags = {"\\Seen"} if n % 2 else set()
    if n % 3 == 0:
        flags.add("work")
    return frozenset(flags)


async def _items(
    datas: Sequence[bytes], flags: Sequence[frozenset[str]]
) -> AsyncIterator[AppendItem]:
    for n, (data, these) in enumerate(zip(datas, flags, strict=True)):
        yield AppendItem(
            chunks=chunks_of(data, 16_384),
            size=len(data),
            flags=these,
            internal_date=BASE + dt.timedelta(minutes=n),
            origin=MessageRef(7, 100 + n),
        )


async def _contents(folder: RemoteFolder) -> dict[int, tuple[bytes, frozenset[str], dt.datetime]]:
    listing = await folder.list_messages()
    found = {}
    async for m in folder.fetch([x.uid for x in listing.messages]):
        found[m.uid] = (b"".join([c async for c in m.chunks]), m.flags, m.internal_date)
    return found


async def _commands_sent(folder: RemoteFolder) -> int:
    return (await folder._client.session()).commands_sent


# (extensions left unused, whether messages share MULTIAPPEND commands)
VARIANTS = [
    ((), True),
    (("LITERAL+",), True),  # MULTIAPPEND with a "+" awaited before every message
    (("MULTIAPPEND",), False),
    (("MULTIAPPEND", "LITERAL+"), False),
]


@pytest.mark.parametrize(("ignore", "grouped"), VARIANTS, ids=lambda v: str(v))
def test_every_message_once_with_its_flags_and_date(
    dovecot: DovecotServer, ignore: tuple[str, ...], grouped: bool
) -> None:
    datas = [sample_message(n, 300 + 40 * n) for n in range(230)]
    datas[17] = sample_message(17, BUFFERED_MESSAGE + 5000)  # streamed on its own
    datas[150] = sample_message(150, 3 << 20)  # several MB: ends a group, streamed
    flags = [_flags(n) for n in range(len(datas))]

    async def go() -> None:
        store = await _store(dovecot, ignore)
        try:
            assert store.multiappend is grouped
            async with store.open_folder("INBOX") as folder:
                before = await _commands_sent(folder)
                uids = await folder.append(_items(datas, flags))
                sent = await _commands_sent(folder) - before
                assert len(uids) == len(set(uids)) == len(datas)
                found = await _contents(folder)
        finally:
            await store.close()
        assert found == {
            uid: (data, these, BASE + dt.timedelta(minutes=n))
            for n, (uid, data, these) in enumerate(zip(uids, datas, flags, strict=True))
        }
        # grouped: a few MULTIAPPENDs and the two large ones alone; else one APPEND each
        assert sent < 20 if grouped else sent >= len(datas)

    asyncio.run(go())


@pytest.mark.parametrize(("ignore", "grouped"), VARIANTS, ids=lambda v: str(v))
def test_a_refused_message_leaves_the_others_stored_and_known(
    dovecot: DovecotServer, ignore: tuple[str, ...], grouped: bool
) -> None:
    datas = [sample_message(n) for n in range(12)]
    flags = [_flags(n) for n in range(len(datas))]
    flags[5] = frozenset({"\\Seen", TOO_LONG})

    async def go() -> None:
        store = await _store(dovecot, ignore)
        try:
            async with store.open_folder("INBOX") as folder:
                with pytest.raises(AppendIncomplete) as info:
                    await folder.append(_items(datas, flags))
                found = await _contents(folder)
                # the connection goes on working after the refusal
                again = await folder.append(_items([sample_message(99)], [frozenset()]))
        finally:
            await store.close()
        uids = info.value.uids
        assert len(uids) == len(datas)
        assert uids[5] is None
        [failure] = info.value.failures
        assert failure.uid == 105  # the source UID of the refused message
        assert "Keyword length too long" in str(failure)
        assert found == {
            uid: (datas[n], flags[n], BASE + dt.timedelta(minutes=n))
            for n, uid in enumerate(uids)
            if uid is not None
        }
        assert len(again) == 1
        assert again[0] not in found

    asyncio.run(go())
