"""Issue 23, item 8: the sandbox lost its generated mailbox and generated another one under
the same UIDVALIDITY. ``exoimap sync`` must notice the other content under UIDs it already
backed up (a warning naming folder and UIDs, counted), fetch it and keep the old copies;
``verify --deep --repair`` must fetch what only a SHA-256 can tell apart."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from exoimap.cli import EXIT_FAILURE, main
from exoimap.sandbox.seed import SeedMessage, SeedOptions, generate, seed_store
from exoimap.sandbox.tenant import SandboxTenant

from .sync_helpers import isolated_home, signed_in_account

GENERATED = 30


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


def _options(upn: str, seed: int) -> SeedOptions:
    return SeedOptions(
        messages=GENERATED, seed=seed, owner_address=upn, median_size=2_000, large_fraction=0.0
    )


def _generate_mailbox(tenant: SandboxTenant, upn: str, seed: int) -> None:
    exchange = tenant.exchange
    exchange.run(lambda: seed_store(exchange.server.mailboxes.get(upn).store, _options(upn, seed)))


def _regenerate_under_the_same_uids(tenant: SandboxTenant, upn: str, seed: int) -> dict[str, int]:
    """What the sandbox did after losing its state: other generated mail under the same
    UIDVALIDITY, the first UIDs of each folder again. Returns, per folder, how many UIDs
    now hold other content with another internal date."""
    fresh: dict[str, list[SeedMessage]] = defaultdict(list)
    for message in generate(_options(upn, seed)):
        fresh[message.folder].append(message)
    exchange = tenant.exchange

    def listed() -> dict[str, dict[int, dt.datetime]]:
        store = exchange.server.mailboxes.get(upn).store
        return {
            folder: {uid: m.internal_date for uid, m in store.record(folder).messages.items()}
            for folder in store.folder_names()
        }

    changed: dict[str, int] = {}
    for folder, dates in exchange.run(listed).items():
        for uid, new in zip(sorted(dates), fresh.get(folder, []), strict=False):
            exchange.replace_content(upn, folder, uid, new.data, internal_date=new.internal_date)
            if new.internal_date != dates[uid]:
                changed[folder] = changed.get(folder, 0) + 1
    return changed


def _flip_last_bytes(tenant: SandboxTenant, upn: str, folder: str, uid: int) -> None:
    """Same size, same date, other bytes: what no listing can tell."""
    exchange = tenant.exchange
    old: bytes = exchange.run(
        lambda: exchange.server.mailboxes.get(upn).store.message_bytes(folder, uid)
    )
    exchange.replace_content(upn, folder, uid, old[:-3] + bytes(b ^ 0x20 for b in old[-3:]))


def test_sync_notices_regenerated_content_and_verify_deep_repair_fixes_the_rest(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {})
    _generate_mailbox(sandbox_tenant, upn, seed=1)
    assert main(["sync", "work"]) == 0
    assert f"work: fetched {GENERATED} messages" in capsys.readouterr().out

    changed = _regenerate_under_the_same_uids(sandbox_tenant, upn, seed=2)
    assert changed  # the two seeds give other mail in at least one folder
    assert main(["sync", "work"]) == 0
    captured = capsys.readouterr()
    total = sum(changed.values())
    assert f"work: fetched {total} messages" in captured.out
    warnings = re.findall(
        r"work: warning: (.+?): the server holds other content under (\d+) UIDs? already "
        r"backed up \(server UIDs ([\d, .]+)\); fetched again, the old copies are kept in "
        r"the archive marked gone",
        captured.err,
    )
    assert {folder: int(count) for folder, count, _uids in warnings} == changed
    assert main(["verify", "work", "--deep"]) == 0  # the archive matches the server again
    capsys.readouterr()
    assert main(["archive", "stats", "work"]) == 0
    assert f"work: {GENERATED + total} messages" in capsys.readouterr().out  # old copies kept

    assert main(["audit", "query", "--account", "work", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    noted = {
        r["data"]["folder"]: r["data"]["count"]
        for r in records
        if r["event"] == "sync.change" and r["data"]["change"] == "content_changed"
    }
    assert noted == changed

    # a change no listing shows: only a deep verify sees it, and --repair fetches it
    folder = next(iter(changed))
    _flip_last_bytes(sandbox_tenant, upn, folder, 1)
    assert main(["sync", "work"]) == 0
    assert "work: fetched 0 messages" in capsys.readouterr().out
    assert main(["verify", "work", "--deep"]) == EXIT_FAILURE
    assert f"{folder}: 1 content differs (SHA-256) (server UIDs 1)" in capsys.readouterr().out
    assert main(["verify", "work", "--deep", "--repair"]) == 0
    out = capsys.readouterr().out
    assert "DIFFERENCES FOUND" in out
    assert "work: repair: fetched 1 message again" in out
    assert main(["verify", "work", "--deep"]) == 0
    assert "verify deep (SHA-256 of every message): ok" in capsys.readouterr().out


def test_repair_does_not_go_with_restore(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "work", "--restore", "--repair"]) == 2
    assert "--repair fetches into the archive; it does not go with --restore" in (
        capsys.readouterr().err
    )
