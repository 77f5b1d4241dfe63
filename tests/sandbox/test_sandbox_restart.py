"""``exoimap sandbox up`` restarted on the same state folder, as real processes: the ports
are kept, and state reaches the disk before the sandbox says it is ready, so a ``kill -9``
right after that loses nothing and no UIDVALIDITY ever comes back with other content."""

from __future__ import annotations

import hashlib
import imaplib
import io
import json
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msal
import pytest
import requests

from exoimap.cli import main
from exoimap.store.memory import MemoryStore
from tests.cli.sync_helpers import isolated_home

EXOIMAP = str(Path(sys.executable).parent / "exoimap")
APP_ONLY = "https://outlook.office365.com/.default"


class Sandbox:
    """A real ``exoimap sandbox up`` process, ready once it printed its banner."""

    def __init__(self, state: Path, *args: str) -> None:
        self.state = state
        self.process = subprocess.Popen(
            [EXOIMAP, "sandbox", "up", "--state", str(state), "--messages", "12", *args],
            env={**os.environ, "EXOIMAP_HOME": str(state.parent / "sandbox-home")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        self.banner: list[str] = []
        while True:
            line = lines.get(timeout=90)
            if line is None:
                assert self.process.stderr is not None
                raise AssertionError(f"sandbox up ended early: {self.process.stderr.read()}")
            self.banner.append(line)
            if line.startswith("Press Ctrl-C"):
                break

    @property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.state / "sandbox.json").read_text())
        return document

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.communicate(timeout=30)
        assert self.process.returncode == 0

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no clean-up of any kind
        self.process.communicate(timeout=30)

    def end(self) -> None:
        if self.process.poll() is None:
            self.kill()


@pytest.fixture
def sandboxes() -> Iterator[list[Sandbox]]:
    """Started sandboxes, killed at the end of the test whatever happened."""
    started: list[Sandbox] = []
    yield started
    for sandbox in started:
        sandbox.end()


def _start(sandboxes: list[Sandbox], state: Path, *args: str) -> Sandbox:
    sandbox = Sandbox(state, *args)
    sandboxes.append(sandbox)
    return sandbox


def _ports(document: dict[str, Any]) -> tuple[str, int]:
    return document["identity_url"], document["imap_port"]


def _daemon(document: dict[str, Any]) -> dict[str, Any]:
    daemon: dict[str, Any] = next(a for a in document["apps"] if a["name"] == "exoimap-daemon")
    return daemon


def _imap(document: dict[str, Any]) -> imaplib.IMAP4_SSL:
    """An IMAP session on alice's mailbox with an app-only token (real MSAL)."""
    session = requests.Session()
    session.verify, session.trust_env = document["ca_file"], False
    app = msal.ConfidentialClientApplication(
        _daemon(document)["client_id"],
        client_credential=_daemon(document)["client_secret"],
        authority=document["authority"],
        http_client=session,
        instance_discovery=False,
    )
    token = app.acquire_token_for_client([APP_ONLY])["access_token"]
    session.close()
    context = ssl.create_default_context(cafile=document["ca_file"])
    client = imaplib.IMAP4_SSL(
        document["imap_host"], document["imap_port"], ssl_context=context, timeout=30
    )
    alice = document["users"][0]["upn"]
    client.authenticate(
        "XOAUTH2", lambda _: f"user={alice}\x01auth=Bearer {token}\x01\x01".encode()
    )
    return client


def _inbox(document: dict[str, Any]) -> tuple[int, dict[int, str]]:
    """INBOX as a client sees it: UIDVALIDITY and the SHA-256 of each message by UID."""
    client = _imap(document)
    with client:
        assert client.select("INBOX")[0] == "OK"
        uidvalidity = int(client.response("UIDVALIDITY")[1][0])
        status, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert status == "OK"
        digests = {}
        for item in data:
            if isinstance(item, tuple):
                match = re.search(rb"UID (\d+)", item[0])
                assert match is not None
                digests[int(match.group(1))] = hashlib.sha256(item[1]).hexdigest()
        client.logout()
    return uidvalidity, digests


def _inbox_on_disk(state: Path, upn: str) -> tuple[int, dict[int, str]]:
    store = MemoryStore.load(state / "mailboxes" / upn)
    record = store.record("INBOX")
    return record.uidvalidity, {
        uid: hashlib.sha256(message.data).hexdigest() for uid, message in record.messages.items()
    }


def test_a_restart_keeps_the_ports_and_a_configured_account_still_syncs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sandboxes: list[Sandbox],
) -> None:
    state = tmp_path / "state"
    first = _start(sandboxes, state)
    document = first.document
    isolated_home(tmp_path, monkeypatch)
    add = ["account", "add", "work", "--flow", "client-secret", "--cloud", "custom",
           "--authority", document["authority"], "--ca-file", document["ca_file"],
           "--imap-host", document["imap_host"], "--imap-port", str(document["imap_port"]),
           "--client-id", _daemon(document)["client_id"], "--tenant", document["tenant_id"],
           "--email", document["users"][0]["upn"]]  # fmt: skip
    assert main(add) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(_daemon(document)["client_secret"] + "\n"))
    assert main(["account", "set-secret", "work"]) == 0
    capsys.readouterr()
    assert main(["sync", "work"]) == 0
    assert ", 0 failed folders" in capsys.readouterr().out
    first.stop()

    second = _start(sandboxes, state)
    assert _ports(second.document) == _ports(document)
    client = _imap(second.document)
    with client:
        assert client.append("INBOX", None, None, b"Subject: after the restart\r\n\r\nhi\r\n")[0]
        client.logout()
    assert main(["sync", "work"]) == 0
    out = capsys.readouterr().out
    assert "fetched 1 message" in out, out
    assert "0 deleted on the server, 0 failed folders" in out, out
    second.stop()

    # An explicit port wins over the kept one, and is kept in its turn.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    third = _start(sandboxes, state, "--imap-port", str(free))
    assert third.document["imap_port"] == free
    assert third.document["identity_url"] == document["identity_url"]
    third.stop()
    assert json.loads((state / "ports.json").read_text())["imap"] == free


def test_a_kept_port_taken_by_another_program_is_a_one_line_error(
    tmp_path: Path, sandboxes: list[Sandbox]
) -> None:
    state = tmp_path / "state"
    first = _start(sandboxes, state)
    imap_port = first.document["imap_port"]
    first.stop()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", imap_port))
        squatter.listen()
        refused = subprocess.run(
            [EXOIMAP, "sandbox", "up", "--state", str(state)],
            env={**os.environ, "EXOIMAP_HOME": str(tmp_path / "home")},
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert refused.returncode == 1
    assert refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, refused.stderr
    assert f"port {imap_port}" in lines[0]
    assert "Address already in use" in lines[0]
    assert "--imap-port N (0: any free port)" in lines[0]
    # Once the port is free again the sandbox comes back on it (and says which faults,
    # set while it was down, it starts with).
    subprocess.run(
        [EXOIMAP, "sandbox", "exchange", "faults", "--delay", "0.01", "--state", str(state)],
        env={**os.environ, "EXOIMAP_HOME": str(tmp_path / "home")},
        check=True,
        capture_output=True,
    )
    again = _start(sandboxes, state)
    assert again.document["imap_port"] == imap_port
    assert "IMAP faults (from faults.json): delay 0.01 s before each write\n" in again.banner


def test_kill_9_right_after_ready_loses_nothing_and_uidvalidity_never_repeats(
    tmp_path: Path, sandboxes: list[Sandbox]
) -> None:
    state = tmp_path / "state"
    first = _start(sandboxes, state)
    first.kill()  # at once: the mailboxes were generated less than a second ago
    document = first.document
    alice = document["users"][0]["upn"]
    assert sum(document["mailboxes"][alice].values()) == 12
    assert not (state / "mailboxes" / alice / "unsaved").exists()
    on_disk = _inbox_on_disk(state, alice)
    assert len(on_disk[1]) == document["mailboxes"][alice]["INBOX"]

    second = _start(sandboxes, state)
    seen = _inbox(second.document)
    assert seen == on_disk  # the same mail under the same UIDVALIDITY: no resync needed

    # A change a client saw, then a crash before the next save: the mailbox comes back
    # under a new UIDVALIDITY (its UIDs would otherwise be handed out again).
    client = _imap(second.document)
    with client:
        assert client.append("INBOX", None, None, b"Subject: lost\r\n\r\nin the crash\r\n")[0]
        client.logout()
    assert (state / "mailboxes" / alice / "unsaved").exists()
    second.kill()
    third = _start(sandboxes, state)
    uidvalidity, digests = _inbox(third.document)
    assert uidvalidity > seen[0]
    assert sorted(digests.values()) == sorted(seen[1].values())
    third.stop()

    # State lost altogether (the mailboxes removed): regenerated under new UIDVALIDITYs.
    import shutil

    shutil.rmtree(state / "mailboxes")
    fourth = _start(sandboxes, state)
    regenerated, _ = _inbox(fourth.document)
    assert regenerated > uidvalidity
    fourth.stop()
