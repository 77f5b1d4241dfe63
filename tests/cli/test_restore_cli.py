"""``exoimap restore`` end to end against the sandbox tenant: back up a mailbox, lose mail
on the server, get it back exactly once (into its own folders, or a ``Restored`` folder),
with dates and flags; a re-run copies nothing; a message over the limit is skipped with its
reason and exit code 4."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest

from exoimap.cli import EXIT_PARTIAL, main
from exoimap.net.credentials import OAuth2Credentials, StaticToken
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.secrets import Secret
from exoimap.store.conformance import sample_message
from exoimap.store.remote import RemoteImapStore

from .sync_helpers import isolated_home, signed_in_account

WHEN = dt.datetime(2022, 11, 3, 16, 45, 12, tzinfo=dt.timezone(dt.timedelta(hours=-5)))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


def _out(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def _mailbox(
    tenant: SandboxTenant, upn: str
) -> dict[str, Counter[tuple[bytes, dt.datetime, frozenset[str]]]]:
    """Every folder's messages as (bytes, internal date, flags), read over IMAP."""

    async def read() -> dict[str, Counter[tuple[bytes, dt.datetime, frozenset[str]]]]:
        token = Secret(await asyncio.to_thread(tenant.user_token, upn))
        store = await RemoteImapStore.connect(
            Endpoint("127.0.0.1", tenant.imap_port, TLSPolicy(ca_file=tenant.ca_file)),
            OAuth2Credentials(upn, StaticToken(token)),
        )
        found: dict[str, Counter[tuple[bytes, dt.datetime, frozenset[str]]]] = {}
        try:
            for info in await store.list_folders():
                async with store.open_folder(info.name) as folder:
                    listing = await folder.list_messages()
                    seen: Counter[tuple[bytes, dt.datetime, frozenset[str]]] = Counter()
                    async for m in folder.fetch([x.uid for x in listing.messages]):
                        body = b"".join([c async for c in m.chunks])
                        seen[(body, m.internal_date, m.flags)] += 1
                found[info.name] = seen
        finally:
            await store.close()
        return found

    return asyncio.run(read())


def test_lost_mail_comes_back_once_with_its_dates_and_flags(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 3, "Sent Items": 2})
    exchange = sandbox_tenant.exchange
    exchange.deliver(
        upn,
        sample_message(50, 700),
        folder="INBOX",
        flags=["\\Flagged", "\\Seen"],
        internal_date=WHEN,
    )
    assert main(["sync", "work"]) == 0
    before = _mailbox(sandbox_tenant, upn)
    # disaster: the inbox is emptied and a sent message deleted
    exchange.delete(upn, "INBOX", [1, 2, 3, 4])
    exchange.delete(upn, "Sent Items", [1])
    assert main(["sync", "work"]) == 0
    capsys.readouterr()

    assert main(["restore", "work", "--merge", "--dry-run"]) == 0
    assert "work: would restore 0 messages" in _out(capsys)[0]  # deleted: not by default
    assert main(["restore", "work", "--merge", "--include-deleted", "--dry-run"]) == 0
    assert "work: would restore 5 messages" in _out(capsys)[0]
    assert _mailbox(sandbox_tenant, upn)["INBOX"] == Counter()  # a dry run changed nothing

    assert main(["restore", "work", "--merge", "--include-deleted"]) == 0
    assert "work: restored 5 messages" in _out(capsys)[0]
    after = _mailbox(sandbox_tenant, upn)
    assert after["INBOX"] == before["INBOX"]  # the same bytes, dates and flags, once each
    assert after["Sent Items"] == before["Sent Items"]

    # again: nothing is copied twice
    assert main(["restore", "work", "--merge", "--include-deleted"]) == 0
    assert "work: restored 0 messages" in _out(capsys)[0]
    assert _mailbox(sandbox_tenant, upn) == after

    # the mailbox holds every restored message once, byte for byte, with flags and dates
    assert main(["verify", "work", "--restore", "--deep"]) == 0
    # (the 4 from INBOX and the 2 of Sent Items: one restored, one found still there)
    assert "verify restore into work: ok: 6 messages" in _out(capsys)[0]
    exchange.set_flags(upn, "INBOX", [5], ["\\Answered"], "add")
    exchange.delete(upn, "Sent Items", [3])
    assert main(["verify", "work", "--restore"]) == 1
    out = _out(capsys)[0]
    assert "INBOX -> INBOX: 1 flags differ" in out
    assert "Sent Items -> Sent Items: 1 not restored" in out

    records = [
        json.loads(line)
        for path in sorted((home / "audit").glob("audit-*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    restored = [r["data"] for r in records if r["event"] == "archive.restored"]
    assert [(r["target"], r["messages"]) for r in restored] == [("work", 5), ("work", 0)]


def test_by_default_into_a_new_folder_and_too_large_is_skipped(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 2})
    sandbox_tenant.exchange.deliver(upn, sample_message(60, 2 * 1024 * 1024), folder="INBOX")
    assert main(["sync", "work"]) == 0
    capsys.readouterr()

    assert main(["restore", "work", "--max-size", "1"]) == EXIT_PARTIAL
    out, err = _out(capsys)
    assert "work: restored 2 messages" in out
    assert "INBOX: source UID 3 skipped:" in err
    assert "more than the target takes (1048576 bytes)" in err
    mailbox = _mailbox(sandbox_tenant, upn)
    restored = sorted(name for name in mailbox if name.startswith("Restored "))
    assert len(restored) == 2  # "Restored <date time>" and its INBOX: no empty folders
    assert restored[1] == restored[0] + "/INBOX"
    assert sum(mailbox[restored[1]].values()) == 2
    assert sum(mailbox["INBOX"].values()) == 3  # the mailbox's own folders untouched
