"""What a restore says about messages the target will not take whole, on real servers:

* Dovecot refuses an APPEND whose keyword is longer than ``mail_max_keyword_length`` (50):
  that message alone is refused, in the middle of a MULTIAPPEND group and a pipeline; every
  other message is stored, recorded in the ledger under its UID, and not copied again by a
  re-run; the refused one is named (source UID and the server's reason), exit code 4.
* Exchange keeps no keywords of its own (no ``\\*`` in PERMANENTFLAGS): each message
  restored without its keywords is named with them, instead of losing them silently."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from exoimap.app.restore import ledger_path
from exoimap.cli import EXIT_PARTIAL, main
from exoimap.config import Paths, load_config
from exoimap.net.credentials import OAuth2Credentials, StaticToken
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.secrets import Secret
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import AppendItem, chunks_of
from exoimap.store.conformance import sample_message
from exoimap.store.remote import RemoteImapStore

from .dovecot_accounts import dovecot_store, fill_folders
from .sync_helpers import add_dovecot_account, isolated_home, signed_in_account

T0 = dt.datetime(2019, 4, 2, 7, 0, tzinfo=dt.UTC)
TOO_LONG = "k" * 60


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=4) as server:
        yield server


def _fill(dovecot: DovecotServer, user: str, count: int) -> None:
    items = [
        AppendItem(
            chunks_of(data := sample_message(n, 900 + n)),
            len(data),
            frozenset({"\\Seen"}),
            T0 + dt.timedelta(days=n),
        )
        for n in range(count)
    ]
    fill_folders(dovecot, user, {"INBOX": items})


def _inbox(dovecot: DovecotServer, user: str) -> Counter[bytes]:
    async def read() -> Counter[bytes]:
        store = await dovecot_store(dovecot, user)
        try:
            async with store.open_folder("INBOX") as folder:
                listing = await folder.list_messages()
                return Counter(
                    [
                        b"".join([c async for c in m.chunks])
                        async for m in folder.fetch([x.uid for x in listing.messages])
                    ]
                )
        finally:
            await store.close()

    return asyncio.run(read())


def _add_keyword(name: str, uid: int, keyword: str) -> None:
    """Give one archived message a keyword (the archive keeps any)."""
    paths = Paths.from_env()
    account = load_config(paths).accounts[name]

    async def change() -> None:
        archive = ArchiveStore.open((account.archive or paths.archive_dir(name)).expanduser())
        try:
            async with archive.open_folder("INBOX") as folder:
                listing = await folder.list_messages()
                flags = next(m.flags for m in listing.messages if m.uid == uid)
                await folder.set_flags({uid: flags | {keyword}})
        finally:
            await archive.close()

    asyncio.run(change())


def test_a_refused_message_is_named_and_the_rest_is_recorded_once(
    home: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = dovecot.new_mailbox(), dovecot.new_mailbox()
    _fill(dovecot, source, 40)
    add_dovecot_account(home, dovecot, source, "src")
    add_dovecot_account(home, dovecot, target, "dst")
    assert main(["sync", "src"]) == 0
    _add_keyword("src", 17, TOO_LONG)
    capsys.readouterr()

    for _run in range(2):
        assert main(["restore", "src", "--to", "dst", "--merge"]) == EXIT_PARTIAL
        captured = capsys.readouterr()
        refused = [line for line in captured.err.splitlines() if "Keyword length too long" in line]
        assert len(refused) == 1
        assert refused[0].startswith("  INBOX: source UID 17: APPEND to 'INBOX' failed")
        # every other message is there once, byte for byte, whatever the run
        held = _inbox(dovecot, target)
        assert set(held.values()) == {1}
        assert len(held) == 39
        assert sample_message(15, 915) in held
        assert sample_message(16, 916) not in held  # source UID 17
    first_run_output = captured.out
    assert "restored 0 messages" in first_run_output  # the second run: nothing new to copy

    ledger = ledger_path(Paths.from_env(), "src", "dst")
    with sqlite3.connect(ledger) as db:
        origins = {uid for (uid,) in db.execute("SELECT origin_uid FROM messages")}
        intents = db.execute("SELECT count(*) FROM intents").fetchone()[0]
    assert origins == set(range(1, 41)) - {17}  # the UID of every stored message known
    assert intents == 1  # only the refused one is still announced


def test_keywords_exchange_cannot_keep_are_named(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 3})
    assert main(["sync", "work"]) == 0
    _add_keyword("work", 2, "project-x")
    capsys.readouterr()
    assert main(["restore", "work"]) == 0
    err = capsys.readouterr().err
    assert "INBOX: source UID 2: the target cannot keep project-x" in err
    assert err.count("cannot keep") == 1

    async def flags() -> list[frozenset[str]]:
        token = Secret(await asyncio.to_thread(sandbox_tenant.user_token, upn))
        store = await RemoteImapStore.connect(
            Endpoint(
                "127.0.0.1", sandbox_tenant.imap_port, TLSPolicy(ca_file=sandbox_tenant.ca_file)
            ),
            OAuth2Credentials(upn, StaticToken(token)),
        )
        try:
            names = [f.name for f in await store.list_folders() if f.name.endswith("/INBOX")]
            async with store.open_folder(names[0]) as folder:
                return [m.flags for m in (await folder.list_messages()).messages]
        finally:
            await store.close()

    assert all("project-x" not in these for these in asyncio.run(flags()))
