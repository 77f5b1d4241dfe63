"""A server that dies mid-sync costs one deadline per account, not a retry budget per folder:
``exoimap sync`` stops with "cannot reach HOST since T" and exit code 1 once connecting has
failed for the account's ``unreachable_timeout``, and loses nothing. A server that only drops
connections now and then is reachable: its sync completes."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from exoimap.cli import EXIT_FAILURE, main
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message
from exoimap.sync.transfer import Transfer

from .sync_helpers import add_dovecot_account, isolated_home, signed_in_account

#: The deadline the tests configure (the default is 300 s).
DEADLINE = 2
FOLDERS = ("INBOX", "Sent", "Trash", "Drafts", "Junk", "Old/2019", "Old/2020", "Old/2021")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=1) as server:  # its own: the test kills it
        yield server


def _fill(dovecot: DovecotServer, user: str, per_folder: int) -> None:
    serial = 0
    for folder in FOLDERS:
        for _ in range(per_folder):
            serial += 1
            dovecot.write_message(
                user, sample_message(serial, 800 + 13 * serial), folder=folder, serial=serial
            )
    dovecot.fix_ownership(user)


def _configure(home: Path, dovecot: DovecotServer, user: str) -> None:
    """The account (a token command for the JWT the Dovecot accepts), with a short deadline."""
    add_dovecot_account(home, dovecot, user, "lab")
    config = home / "config.toml"
    config.write_text(config.read_text() + f"unreachable_timeout = {DEADLINE}\n")


def _kill_after_first_batch(
    monkeypatch: pytest.MonkeyPatch, dovecot: DovecotServer, killed_at: list[float]
) -> None:
    """Crash the server (SIGKILL, every process) as soon as the first batch of messages is
    in the archive, while the other folders are being fetched or wait their turn."""
    real = Transfer._append

    async def append_then_kill(self: Transfer, uids: Sequence[int], *, matching: bool) -> list[int]:
        left = await real(self, uids, matching=matching)
        if not killed_at:
            dovecot.kill()
            killed_at.append(time.monotonic())
        return left

    monkeypatch.setattr(Transfer, "_append", append_then_kill)


@pytest.mark.dovecot
def test_a_server_killed_mid_sync_stops_the_run_within_the_deadline(
    dovecot: DovecotServer,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user = dovecot.new_mailbox()
    _fill(dovecot, user, per_folder=30)
    _configure(home, dovecot, user)
    killed_at: list[float] = []
    _kill_after_first_batch(monkeypatch, dovecot, killed_at)
    capsys.readouterr()

    code = main(["sync", "lab"])
    ended = time.monotonic()

    out, err = capsys.readouterr()
    assert killed_at, "the server was never killed: the sync did not get to a first batch"
    assert code == EXIT_FAILURE, out + err
    warnings = [line for line in err.splitlines() if line.startswith("WARNING ")]
    lines = [line for line in err.splitlines() if line and not line.startswith("WARNING ")]
    assert len(lines) == 1, err  # one line, not one per folder
    # a warning per connection the crash cut, and one for the first failed reconnect; the
    # other reconnects are not repeated on the terminal
    assert len(warnings) <= 4 + 1, err
    assert re.fullmatch(
        r"lab: failed: cannot reach 127\.0\.0\.1 since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC "
        r"\(gave up after \d+ s of retries; last error: .*\)\. Nothing was lost: .*",
        lines[0],
    ), lines[0]
    # Bounded by the deadline (plus a connect or two), far from the 8 attempts (~50 s) of
    # backoff each folder used to spend; the margin is for a loaded machine.
    assert ended - killed_at[0] < DEADLINE + 20

    # Nothing was lost: once the server is back, the next sync completes and checks out.
    monkeypatch.undo()
    isolated_home(home.parent, monkeypatch)
    dovecot.start()
    config = home / "config.toml"
    config.write_text(
        re.sub(r"imap_port = \d+", f"imap_port = {dovecot.imaps_port}", config.read_text())
    )
    assert main(["sync", "lab"]) == 0
    assert main(["verify", "lab", "--deep"]) == 0
    out, _ = capsys.readouterr()
    assert f"{len(FOLDERS) * 30} messages on the server" in out


def test_a_server_that_drops_connections_now_and_then_still_completes(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Drops of established connections do not count against the deadline (1 s here):
    reconnecting works, so the run goes on longer than the deadline and completes."""
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests()) as flaky:
        signed_in_account(sandbox_tenant, "work", {"INBOX": 120, "Sent Items": 60}, exchange=flaky)
        config = home / "config.toml"
        config.write_text(config.read_text() + "unreachable_timeout = 1\n")
        flaky.faults.delay = 0.03  # slow enough that the run outlasts the deadline
        flaky.faults.drop_after_bytes = 50_000  # each connection dies after 50 KB
        capsys.readouterr()
        started = time.monotonic()
        code = main(["sync", "work"])
        took = time.monotonic() - started
        flaky.faults.clear()
        out, err = capsys.readouterr()
        assert code == 0, out + err
        assert "work: fetched 180 messages" in out
        assert took > 1
        drops = [line for line in err.splitlines() if "retrying in" in line]
        assert len(drops) >= 2, err  # the connections did drop, and were retried
        assert main(["verify", "work", "--deep"]) == 0
