"""``exoimap sync``, ``verify`` and ``archive stats`` end to end against the sandbox tenant:
real device-code sign-in, real IMAP over TLS, a real archive on disk."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pytest

from exoimap.cli import EXIT_FAILURE, EXIT_PARTIAL, EXIT_SIGN_IN, main
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.archive import ArchiveStore
from exoimap.store.conformance import sample_message

from .sync_helpers import (
    add_account,
    fetch_fails_in,
    isolated_home,
    new_mailbox,
    signed_in_account,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


def _out(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def _stats(capsys: pytest.CaptureFixture[str], name: str) -> str:
    capsys.readouterr()
    assert main(["archive", "stats", name]) == 0
    return capsys.readouterr().out


def _message_files(root: Path) -> list[Path]:
    return sorted(
        p for p in (root / "maildir").rglob("*") if p.is_file() and p.parent.name == "cur"
    )


def test_first_sync_then_incremental_then_deep_verify(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 6, "Sent Items": 3})
    capsys.readouterr()
    assert main(["sync", "work"]) == 0
    out, _ = _out(capsys)
    assert "work: fetched 9 messages" in out
    stats = _stats(capsys, "work")
    assert "work: 9 messages" in stats
    assert re.search(r"INBOX\s+6 messages", stats)
    assert re.search(r"Sent Items\s+3 messages", stats)

    # another client: new mail, a flag, a deletion
    exchange = sandbox_tenant.exchange
    exchange.deliver(upn, sample_message(900, 4000), folder="INBOX")
    exchange.set_flags(upn, "INBOX", [1], ["\\Flagged"], "add")
    exchange.delete(upn, "Sent Items", [2])
    assert main(["sync", "work"]) == 0
    out, _ = _out(capsys)
    assert "work: fetched 1 message" in out
    assert "1 flag change, 1 deleted on the server" in out

    assert main(["verify", "work", "--deep"]) == 0
    out, _ = _out(capsys)
    assert "verify deep (SHA-256 of every message): ok" in out
    stats = _stats(capsys, "work")
    assert "work: 10 messages" in stats
    assert "(1 deleted on the server)" in stats  # kept in the archive, marked gone

    # every command that touched tokens, IMAP or the archive is in the audit log
    assert main(["audit", "query", "--account", "work", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    events = {r["event"] for r in records}
    assert {"token.requested", "imap.authenticated", "sync.folder"} <= events
    assert {"archive.verified", "archive.read"} <= events
    inbox = [r for r in records if r["event"] == "sync.folder" and r["data"]["folder"] == "INBOX"]
    assert [r["data"]["copied"] for r in inbox] == [6, 1]


def test_folder_and_exclude_patterns(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 2, "Sent Items": 3, "Archive": 4})
    capsys.readouterr()
    assert main(["sync", "work", "--folder", "Sent*"]) == 0
    assert "work: fetched 3 messages" in _out(capsys)[0]
    stats = _stats(capsys, "work")
    assert "work: 3 messages" in stats
    assert "Archive" not in stats

    assert main(["sync", "work", "--exclude", "INBOX", "--exclude", "Sent*"]) == 0
    assert "work: fetched 4 messages" in _out(capsys)[0]
    stats = _stats(capsys, "work")
    assert "work: 7 messages" in stats
    # left out by --exclude is not "gone from the server"
    assert "gone from the server" not in stats

    assert main(["sync", "work"]) == 0
    assert "work: fetched 2 messages" in _out(capsys)[0]


def _tree(root: Path) -> dict[str, str]:
    """Every file's hash; the index by its content (SQLite may rewrite its header)."""
    tree = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "lock" and not p.name.startswith("index.sqlite")
    }
    db = sqlite3.connect(f"file:{root / 'index.sqlite'}?mode=ro", uri=True)
    try:
        tree["index.sqlite (content)"] = "\n".join(db.iterdump())
    finally:
        db.close()
    return tree


def test_dry_run_plans_and_changes_nothing(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 3})
    archive = home / "archive" / "work"
    capsys.readouterr()

    assert main(["sync", "work", "--dry-run"]) == 0
    out, _ = _out(capsys)
    assert "would fetch 3 messages" in out
    assert not archive.exists()  # a dry run creates no archive

    assert main(["sync", "work"]) == 0
    sandbox_tenant.exchange.deliver(upn, sample_message(77, 2000), folder="INBOX")
    sandbox_tenant.exchange.set_flags(upn, "INBOX", [1], ["\\Seen"], "add")
    capsys.readouterr()
    before = _tree(archive)
    assert main(["sync", "work", "--dry-run"]) == 0
    out, _ = _out(capsys)
    assert "would sync INBOX: fetch 1" in out
    assert "update flags of 1" in out
    assert "work: would fetch 1 message" in out
    assert _tree(archive) == before

    assert main(["sync", "work"]) == 0
    assert "work: fetched 1 message" in _out(capsys)[0]


def test_dry_run_after_a_rename_on_the_server_says_rename_not_fetch(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dry run is the engine in plan-only mode: it sees the rename the real run makes
    (it used to say "Work: new folder, fetch 3" while the real run renamed and fetched 0)."""
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    exchange = sandbox_tenant.exchange
    store = exchange.run(lambda: exchange.server.mailboxes.get(upn).store)
    exchange.run(store.create_folder_now, "Projects")
    for n in range(3):
        exchange.deliver(upn, sample_message(n, 800), folder="Projects")
    assert main(["sync", "work"]) == 0
    exchange.run(store.rename_folder_now, "Projects", "Work")
    capsys.readouterr()
    assert main(["sync", "work", "--dry-run"]) == 0
    out, _ = _out(capsys)
    assert "would rename folder Projects to Work" in out
    assert "work: would fetch 0 messages" in out
    assert main(["sync", "work"]) == 0
    assert "work: fetched 0 messages" in _out(capsys)[0]
    assert main(["archive", "stats", "work"]) == 0
    stats = _out(capsys)[0]
    assert "Work" in stats
    assert "Projects" not in stats
    records = [
        json.loads(line)
        for path in sorted((home / "audit").glob("audit-*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    changes = [r["data"] for r in records if r["event"] == "sync.change"]
    assert {c["folder"] for c in changes if c["change"] == "folder_created"} >= {"Projects"}
    renames = [(c["folder"], c["new_name"]) for c in changes if c["change"] == "folder_renamed"]
    assert renames == [("Projects", "Work")]


def test_a_failing_folder_gives_exit_4_and_the_others_complete(
    sandbox_tenant: SandboxTenant,
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 4, "Archive": 2})
    # the server fails every FETCH in this folder: "NO Server Unavailable. 15"
    restore_fetch = fetch_fails_in(monkeypatch, "Archive")
    capsys.readouterr()
    assert main(["sync", "work"]) == EXIT_PARTIAL
    out, err = _out(capsys)
    assert "work: fetched 4 messages" in out
    assert "1 failed folder " in out
    assert "Some items failed:" in err
    failed = [line for line in err.splitlines() if line.startswith("  work/")]
    assert len(failed) == 1
    assert failed[0].startswith("  work/Archive: ")

    restore_fetch()
    assert main(["sync", "work"]) == 0
    assert "work: fetched 2 messages" in _out(capsys)[0]


def test_a_locked_archive_is_a_clear_error_and_nothing_is_lost(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 3})
    assert main(["sync", "work"]) == 0
    root = home / "archive" / "work"
    files = _message_files(root)
    assert len(files) == 3
    capsys.readouterr()
    other = ArchiveStore.open(root)  # "another running sync"
    try:
        assert main(["sync", "work"]) == EXIT_FAILURE
        err = _out(capsys)[1]
        assert "is in use by another exoimap process" in err
        assert "wait for it to finish" in err
    finally:
        asyncio.run(other.close())
    assert _message_files(root) == files
    assert main(["sync", "work"]) == 0


def test_verify_finds_a_deleted_and_a_modified_file_and_sync_repairs(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 4})
    assert main(["sync", "work"]) == 0
    files = _message_files(home / "archive" / "work")
    files[0].unlink()  # deleted by hand
    capsys.readouterr()
    assert main(["verify", "work"]) == EXIT_FAILURE
    out, _ = _out(capsys)
    assert "file missing" in out
    assert "DIFFERENCES FOUND" in out

    assert main(["sync", "work"]) == 0
    assert "fetched again 1 message whose file was missing" in _out(capsys)[0]
    assert main(["verify", "work", "--deep"]) == 0
    capsys.readouterr()

    victim = _message_files(home / "archive" / "work")[1]
    data = bytearray(victim.read_bytes())
    data[-3] ^= 0x20  # same size, different bytes: only a deep verify can tell
    victim.write_bytes(bytes(data))
    assert main(["verify", "work"]) == 0
    capsys.readouterr()
    assert main(["verify", "work", "--deep"]) == EXIT_FAILURE
    out, _ = _out(capsys)
    assert "file corrupt (size or SHA-256 differs from the index)" in out


def test_verify_and_stats_without_an_archive(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    capsys.readouterr()
    assert main(["verify", "work"]) == EXIT_FAILURE
    assert "has no archive" in _out(capsys)[1]
    assert main(["archive", "stats", "work"]) == EXIT_FAILURE
    assert "no archive at" in _out(capsys)[1]
    assert main(["sync", "nosuch"]) == 2


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_index_is_repaired_without_fetching_again(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 3, "Archive": 2})
    assert main(["sync", "work"]) == 0
    root = home / "archive" / "work"
    files = _message_files(root)
    index = root / "index.sqlite"
    for extra in root.glob("index.sqlite-*"):
        extra.unlink()
    if damage == "truncated":
        index.write_bytes(index.read_bytes()[:1000])
    else:
        index.write_bytes(b"this is not an index\n" * 100)
    capsys.readouterr()
    assert main(["sync", "work"]) == 0
    out, _ = _out(capsys)
    assert "work: fetched 0 messages" in out
    assert "archive repaired:" in out
    assert _message_files(root) == files
    assert main(["verify", "work", "--deep"]) == 0


def test_accounts_run_together_and_one_without_sign_in_gives_exit_4(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "good", {"INBOX": 2})
    add_account(sandbox_tenant, "nologin", new_mailbox(sandbox_tenant, {"INBOX": 1}))
    capsys.readouterr()
    assert main(["sync", "good", "nologin"]) == EXIT_PARTIAL
    out, err = _out(capsys)
    assert "good: fetched 2 messages" in out
    assert "nologin: failed:" in err
    assert "  nologin: " in err.split("Some items failed:")[1]
    assert main(["sync", "nologin"]) == EXIT_SIGN_IN
    assert "exoimap login nologin" in _out(capsys)[1]
