"""``exoimap watch`` against a real Dovecot (IDLE there is woken by the server's own
mailbox notifications, not an emulator's): mail written into the user's Maildir by
another program is in the archive within seconds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exoimap.cli import main
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.store.conformance import sample_message

from ..cli.sync_helpers import add_dovecot_account, isolated_home
from .test_watch_sandbox import FAST, Watching, archived, eventually


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=2) as server:
        yield server


@pytest.mark.dovecot
def test_mail_delivered_into_dovecot_reaches_the_archive(
    dovecot: DovecotServer, home: Path
) -> None:
    user = dovecot.new_mailbox()
    for n in range(2):
        dovecot.write_message(user, sample_message(n, 800), serial=n)
    dovecot.fix_ownership(user)
    add_dovecot_account(home, dovecot, user, "box")
    # Dovecot creates its special-use folders (auto = create) in the first session that looks;
    # two sessions doing it at once (the watch's first sync and its IDLE on Sent) make one
    # fail with "Mailbox already exists": a server race this test is not about.
    assert main(["sync", "box"]) == 0
    with Watching(["box"], FAST) as watching:
        eventually(lambda: archived(home, "box") == 2, "the first sync")
        eventually(lambda: "INBOX" in watching.of("box").idle_folders, "IDLE on INBOX")
        dovecot.write_message(user, sample_message(7, 900), serial=7)
        dovecot.fix_ownership(user)
        eventually(lambda: archived(home, "box") == 3, "the new message (IDLE)")
        assert watching.of("box").last_error == ""
    assert main(["verify", "box", "--deep"]) == 0
