"""A hostile server cannot make the client buffer without bound, store messages nobody
asked for, use an illegal UIDVALIDITY, or put control characters into an error message."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from exoimap.errors import FolderError, RemoteProtocolError
from exoimap.net.credentials import OAuth2Credentials, StaticToken
from exoimap.net.imap import Endpoint, ImapClient, RetryPolicy
from exoimap.net.session import ImapSession, ResponseLimits
from exoimap.net.tls import TLSPolicy
from exoimap.protocol import commands as c
from exoimap.protocol.types import SequenceSet
from exoimap.sandbox.ca import LocalCA
from exoimap.secrets import Secret
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import MessageInfo
from exoimap.store.remote import RemoteImapStore
from exoimap.sync import sync
from tests.net.hostile import HostileFolder, HostileServer
from tests.net.servers import server_context

pytestmark = pytest.mark.anyio

CREDENTIALS = OAuth2Credentials("user@example.test", StaticToken(Secret("t" * 40)))
RETRY = RetryPolicy(backoff_base=0.01, max_attempts=2)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    ca = LocalCA.load_or_create(tmp_path_factory.mktemp("hostile-ca"))
    cert = ca.issue(("127.0.0.1",))
    return ca.cert_file, server_context(str(cert.cert_file), str(cert.key_file))


def _message(n: int) -> bytes:
    return f"Message-ID: <m{n}@example.test>\r\nSubject: {n}\r\n\r\nbody {n}\r\n".encode()


def _folder(count: int = 2, **kw: object) -> HostileFolder:
    return HostileFolder(messages={n: _message(n) for n in range(1, count + 1)}, **kw)  # type: ignore[arg-type]


def _server(
    tls: tuple[Path, object], folders: dict[str, HostileFolder], **kw: object
) -> HostileServer:
    return HostileServer(tls[1], folders, **kw)  # type: ignore[arg-type]


def _endpoint(tls: tuple[Path, object], server: HostileServer) -> Endpoint:
    return Endpoint("127.0.0.1", server.port, TLSPolicy(ca_file=tls[0]))


async def _bodies(client: ImapClient, folder: str, uids: list[int]) -> AsyncIterator[int]:
    async for message in client.fetch(folder, uids):
        b"".join([chunk async for chunk in message.chunks])
        yield message.uid


async def test_a_flood_of_fetch_lines_is_cut_at_the_limit_with_bounded_memory(
    tls: tuple[Path, object],
) -> None:
    """250,000 FETCH lines for a folder of 2 messages: buffered whole they take about 60 MB
    (the report: 3 million took 2 GB); the client drops the connection at the limit."""
    async with _server(tls, {"INBOX": _folder(2)}, flood=250_000) as server:
        store = await RemoteImapStore.connect(_endpoint(tls, server), CREDENTIALS, retry=RETRY)
        try:
            async with store.open_folder("INBOX") as folder:
                tracemalloc.start()
                try:
                    with pytest.raises(RemoteProtocolError) as info:
                        await folder.list_messages()
                    _now, peak = tracemalloc.get_traced_memory()
                finally:
                    tracemalloc.stop()
        finally:
            await store.close()
    message = str(info.value)
    assert "more than 50004 responses to one FETCH command" in message
    assert "holds 2 messages" in message
    assert "\n" not in message
    # the limit's 50,004 responses take about 12 MB; everything would take five times that
    assert peak < 30 << 20


async def test_a_command_may_not_buffer_more_than_its_byte_limit(
    tls: tuple[Path, object],
) -> None:
    """2,000 FETCH lines of 20 KB each (40 MB) for a folder of 2 messages: few enough for
    the count limit, so the byte limit (here 4 MB) must cut them."""
    limits = ResponseLimits(bytes=4 << 20, bytes_per_message=1024)
    async with _server(tls, {"INBOX": _folder(2)}, flood=2_000, flood_literal=20_000) as server:
        endpoint = replace(_endpoint(tls, server), limits=limits)
        async with ImapClient(endpoint, CREDENTIALS, retry=RETRY) as client:
            await client.select("INBOX")
            tracemalloc.start()
            try:
                with pytest.raises(RemoteProtocolError, match="passed 4 MB") as info:
                    await client.in_folder("INBOX", _list_all)
                _now, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert not client.connected  # dropped: the stream cannot be trusted
    assert "holds 2 messages" in str(info.value)
    assert peak < 16 << 20


async def _list_all(session: ImapSession) -> int:
    reply = await session.command(c.Fetch(SequenceSet.all(), ("UID", "FLAGS"), uid=True))
    return len(reply.untagged)


@pytest.mark.parametrize("fault", ["repeat-first", "unasked"])
async def test_fetch_accepts_only_the_uids_asked_for_each_once(
    tls: tuple[Path, object], fault: str
) -> None:
    got: list[int] = []
    async with (
        _server(tls, {"INBOX": _folder(6)}, fetch_fault=fault) as server,
        ImapClient(_endpoint(tls, server), CREDENTIALS, retry=RETRY) as client,
    ):
        with pytest.raises(RemoteProtocolError) as info:
            await _collect(_bodies(client, "INBOX", [1, 2, 3, 4, 5, 6]), got)
        assert not client.connected  # the rest of the answer is never read
    bogus = 1 if fault == "repeat-first" else 106
    assert got in ([], [1], [1, 2, 3, 4, 5, 6])  # the honest part, at most
    assert f"UID {bogus} in 'INBOX', which this UID FETCH did not ask for" in str(info.value)


async def test_pipelined_fetch_answers_that_interleave_are_each_delivered_once(
    tls: tuple[Path, object],
) -> None:
    # UID 3 (the second command's first message) comes before UID 2 and the first command's
    # completion; it is large enough to be streamed, so its body is routed by its UID too.
    folder = _folder(6)
    folder.messages[3] = _message(3) + b"x" * 300_000 + b"\r\n"
    got: dict[int, bytes] = {}
    retry = replace(RETRY, fetch_batch=2)
    async with (
        _server(tls, {"INBOX": folder}, fetch_fault="interleave") as server,
        ImapClient(_endpoint(tls, server), CREDENTIALS, retry=retry) as client,
    ):
        await client.select("INBOX")
        before = (await client.session()).commands_sent
        async for message in client.fetch("INBOX", [1, 2, 3, 4, 5, 6]):
            assert message.uid not in got
            got[message.uid] = b"".join([chunk async for chunk in message.chunks])
        assert (await client.session()).commands_sent - before == 3  # one per batch, no retry
    assert got == folder.messages
    assert list(got) == [1, 2, 3, 4, 5, 6]


async def _collect(uids: AsyncIterator[int], into: list[int]) -> None:
    async for uid in uids:
        into.append(uid)


async def test_a_folder_answering_with_unasked_uids_fails_alone_and_stores_nothing_bogus(
    tls: tuple[Path, object], tmp_path: Path
) -> None:
    folders = {"INBOX": _folder(3), "Other": _folder(3)}
    async with _server(tls, folders, fetch_fault="repeat-first") as server:
        store = await RemoteImapStore.connect(_endpoint(tls, server), CREDENTIALS, retry=RETRY)
        archive = ArchiveStore.open(tmp_path / "archive", fsync_mode="none")
        try:
            report = await sync(store, archive, archive.sync_state())
            stored = {
                name: [m.uid for m in (await _listing(archive, name))]
                for name in ("INBOX", "Other")
            }
        finally:
            await archive.close()
            await store.close()
    failed = {f.source: f.errors for f in report.folders if f.errors}
    assert set(failed) == {"INBOX", "Other"}  # every folder of this server lies
    assert all(isinstance(e, RemoteProtocolError) for errors in failed.values() for e in errors)
    # at most the one honest answer (UID 1) per folder; never a second copy
    assert all(len(uids) <= 1 for uids in stored.values())


async def _listing(archive: ArchiveStore, name: str) -> list[MessageInfo]:
    async with archive.open_folder(name) as folder:
        return (await folder.list_messages()).messages


async def test_uidvalidity_zero_is_refused_for_that_folder_only(
    tls: tuple[Path, object], tmp_path: Path
) -> None:
    folders = {"INBOX": _folder(2), "Zero": _folder(2, uidvalidity=0)}
    async with _server(tls, folders) as server:
        store = await RemoteImapStore.connect(_endpoint(tls, server), CREDENTIALS, retry=RETRY)
        archive = ArchiveStore.open(tmp_path / "archive", fsync_mode="none")
        try:
            with pytest.raises(FolderError, match="no valid UIDVALIDITY"):
                await store.folder_state("Zero")
            report = await sync(store, archive, archive.sync_state())
            inbox = await _listing(archive, "INBOX")
        finally:
            await archive.close()
            await store.close()
    failed = {f.source: [str(e) for e in f.errors] for f in report.folders if f.errors}
    assert list(failed) == ["Zero"]
    assert "UIDVALIDITY (0, which IMAP forbids)" in failed["Zero"][0]
    assert len(inbox) == 2


async def test_server_text_in_an_error_shows_no_control_character(
    tls: tuple[Path, object],
) -> None:
    refuse = b"\x1b[2J\x1b]0;owned\x07 [/bold]no \xe2\x80\xae way"
    folders = {"INBOX": _folder(1), "Locked": _folder(1, refuse=refuse)}
    async with (
        _server(tls, folders) as server,
        ImapClient(_endpoint(tls, server), CREDENTIALS, retry=RETRY) as client,
    ):
        with pytest.raises(FolderError) as info:
            await client.select("Locked")
    message = str(info.value)
    assert "\\x1b[2J\\x1b]0;owned\\x07 [/bold]no" in message
    assert not any(ord(ch) < 32 or ord(ch) == 0x7F for ch in message)
