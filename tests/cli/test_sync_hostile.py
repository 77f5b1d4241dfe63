"""``exoimap sync`` against a hostile IMAP server (signed in through the sandbox tenant):
server text never reaches the terminal as control characters or rich markup, and each bad
folder fails alone (exit 4) while the others are backed up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exoimap.cli import EXIT_PARTIAL, main
from exoimap.sandbox.tenant import SandboxTenant
from tests.net.hostile import HostileFolder, HostileServer
from tests.net.servers import server_context

from .sync_helpers import add_account, isolated_home, login, new_mailbox

TITLE = "\x1b]0;owned\x07"
LONG = "/".join(["Projects 2024 - Customer correspondence and contracts"] * 5) + "/Closed 2023"
FOLDERS = {
    "INBOX": 2,
    f"evil\x1b[2J{TITLE}": 1,
    "[blink red]party[/blink red]": 1,
    "[/bold]x": 1,
    "a//b": 1,
    LONG: 1,
}


def _message(n: int) -> bytes:
    return f"Message-ID: <h{n}@example.test>\r\nSubject: {n}\r\n\r\nbody {n}\r\n".encode()


@pytest.fixture
def hostile(sandbox_tenant: SandboxTenant, tmp_path: Path) -> Iterator[HostileServer]:
    ca = sandbox_tenant.identity.ca
    cert = ca.issue((sandbox_tenant.imap_host,), folder=tmp_path, stem="hostile")
    n = 0
    folders: dict[str, HostileFolder] = {}
    for name, count in FOLDERS.items():
        folders[name] = HostileFolder(messages={u: _message(n + u) for u in range(1, count + 1)})
        n += 10
    folders["Locked"] = HostileFolder(refuse=b"\x1b[31m[/bold]no access\x1b[0m" + TITLE.encode())
    folders["Zero"] = HostileFolder(uidvalidity=0, messages={1: _message(99)})
    server = HostileServer(
        server_context(str(cert.cert_file), str(cert.key_file)),
        folders,
        greeting=f"* OK {TITLE}[blink]hostile[/blink] ready\x1b[2J\r\n".encode(),
    )
    with server.running():
        yield server


def test_hostile_names_and_texts_are_shown_escaped_and_bad_folders_fail_alone(
    sandbox_tenant: SandboxTenant,
    hostile: HostileServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolated_home(tmp_path, monkeypatch)
    upn = new_mailbox(sandbox_tenant, {})
    add_account(sandbox_tenant, "work", upn, imap_port=hostile.port)
    login(sandbox_tenant, "work", upn)
    capsys.readouterr()

    code = main(["-v", "sync", "work"])
    out, err = capsys.readouterr()
    shown = out + err
    assert code == EXIT_PARTIAL, shown
    for raw in ("\x1b", "\x07"):
        assert raw not in shown
    assert "hostile[/blink] ready\\x1b[2J" in err  # the greeting, in the -v log
    assert "work/evil\\x1b[2J\\x1b]0;owned\\x07: 1 message," in out
    assert "work/[/bold]x: 1 message," in out
    assert "work/[blink red]party[/blink red]: 1 message," in out
    assert "work: fetched 7 messages" in out
    assert "2 failed folders" in out
    failures = err[err.index("Some items failed:") :]
    assert "work/Locked: cannot open folder 'Locked': \\x1b[31m[/bold]no access" in failures
    assert "work/Zero: the server gives folder 'Zero' no valid UIDVALIDITY" in failures
    assert len(failures.strip().splitlines()) == 3  # the heading and one line a folder

    assert main(["archive", "stats", "work"]) == 0
    stats = capsys.readouterr().out
    assert "\x1b" not in stats
    assert "evil\\x1b[2J\\x1b]0;owned\\x07" in stats
    assert "a//b" in stats
    assert LONG in stats
