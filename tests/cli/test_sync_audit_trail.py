"""What a sync leaves in the audit trail for the metrics to count: one ``sync.account`` per
account run (failed runs say why), error kinds on ``sync.folder``, and ``imap.throttled``
for every wait the server asked for. The metrics are fed by these events alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.cli import EXIT_FAILURE, EXIT_PARTIAL, main
from exoimap.config import Paths
from exoimap.sandbox.exchange.config import ExchangeSettings, ThrottlePolicy
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.archive import ArchiveStore
from exoimap.store.conformance import sample_message

from .sync_helpers import fetch_fails_in, isolated_home, signed_in_account


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


def _records(event: str) -> list[audit.AuditRecord]:
    return [r for r in audit.read_records(Paths.from_env().audit_dir) if r.event == event]


def test_account_runs_and_folder_errors_are_audited(
    sandbox_tenant: SandboxTenant, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 3, "Archive": 2})
    restore_fetch = fetch_fails_in(monkeypatch, "Archive")
    assert main(["sync", "work"]) == EXIT_PARTIAL
    restore_fetch()

    (archive,) = [r for r in _records("sync.folder") if r.data["folder"] == "Archive"]
    kinds = archive.data["error_kinds"]
    assert isinstance(kinds, list)
    assert kinds
    assert len(kinds) == archive.data["failed"]
    assert all(kind.isidentifier() for kind in kinds)  # class names, never messages
    (partial,) = _records("sync.account")
    assert partial.outcome == "failure"
    assert partial.data["copied"] == 3
    assert partial.data["failed"] == len(kinds)
    assert partial.data["error_kind"] == ""  # the run itself completed
    assert partial.data["duration_s"] > 0

    other = ArchiveStore.open(home / "archive" / "work")  # "another running sync"
    try:
        assert main(["sync", "work"]) == EXIT_FAILURE
    finally:
        asyncio.run(other.close())
    locked = _records("sync.account")[-1]
    assert locked.outcome == "failure"
    assert locked.data["error_kind"] == "StoreLocked"
    assert "in use by another exoimap process" in str(locked.data["error"])

    assert main(["sync", "work"]) == 0
    done = _records("sync.account")[-1]
    assert (done.outcome, done.data["copied"], done.data["error"]) == ("success", 2, "")


def test_throttling_waits_are_audited(sandbox_tenant: SandboxTenant, home: Path) -> None:
    # After the first sync's FETCH the mailbox is over its limit for 4 s; the second sync
    # starts well within that, is asked to wait 4.5 s, and by then the window is over.
    throttle = ThrottlePolicy(window_seconds=4.0, max_messages=2, backoff_ms=4500)
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests(throttle=throttle)) as server:
        upn = signed_in_account(sandbox_tenant, "busy", {"INBOX": 3}, exchange=server)
        assert main(["sync", "busy"]) == 0
        assert _records("imap.throttled") == []
        server.deliver(upn, sample_message(4, 600), folder="INBOX")
        assert main(["sync", "busy"]) == 0
    waits = _records("imap.throttled")
    assert waits
    assert {r.account for r in waits} == {"busy"}
    assert {r.data["wait_s"] for r in waits} == {4.5}
    assert "Suggested Backoff Time: 4500 milliseconds" in str(waits[0].data["reason"])
    assert [(r.outcome, r.data["copied"]) for r in _records("sync.account")] == [
        ("success", 3),
        ("success", 1),
    ]
