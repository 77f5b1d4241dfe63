"""Issue 23, item 5: ``--cloud worldwide`` survives ``account add --flow token-command``, so a
broker's token is held to the Microsoft checks at ``login`` and ``token show`` (a Graph token
is refused there, not later at IMAP)."""

from __future__ import annotations

import base64
import json
import sys
import time
import tomllib
from pathlib import Path

import pytest

from exoimap.cli import EXIT_SIGN_IN, main

from .sync_helpers import isolated_home


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


def jwt(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'typ': 'JWT', 'alg': 'RS256'})}.{part(claims)}.c2ln"


def broker(tmp_path: Path, audience: str) -> str:
    now = int(time.time())
    token = jwt({"aud": audience, "scp": "IMAP.AccessAsUser.All", "upn": "ada@contoso.example",
                 "iat": now, "exp": now + 900})  # fmt: skip
    script = tmp_path / f"broker-{len(audience)}.py"
    script.write_text(f"print({token!r})\n")
    return f"{sys.executable} {script}"


def add(name: str, command: str, *extra: str) -> int:
    return main(["account", "add", name, "--email", "ada@contoso.example",
                 "--flow", "token-command", "--token-command", command, *extra])  # fmt: skip


def test_cloud_worldwide_is_kept_with_a_token_command_and_an_imap_host(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = broker(tmp_path, "https://graph.microsoft.com")
    assert add("work", graph, "--cloud", "worldwide", "--imap-host", "127.0.0.1") == 0
    table = tomllib.loads((home / "config.toml").read_text())["accounts"]["work"]
    assert table["cloud"] == "worldwide"
    capsys.readouterr()
    assert main(["account", "list"]) == 0
    assert capsys.readouterr().out.split("\t")[2] == "worldwide"

    # The documented checks run: a Graph token is refused by login and by token show.
    for argv in (["login", "work"], ["token", "show", "work"]):
        assert main(argv) == EXIT_SIGN_IN
        err = capsys.readouterr().err
        assert "issued for 'https://graph.microsoft.com'" in err
        assert "Microsoft Graph" in err
        assert len(err.strip().splitlines()) == 1


def test_an_exchange_token_from_a_broker_passes_and_custom_stays_unchecked(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exchange = broker(tmp_path, "https://outlook.office.com")
    assert add("work", exchange, "--cloud", "worldwide", "--imap-host", "127.0.0.1") == 0
    assert main(["login", "work"]) == 0
    # Only an IMAP host (any XOAUTH2 server): cloud custom, written out, token unchecked.
    graph = broker(tmp_path, "https://graph.microsoft.com")
    assert add("dove", graph, "--imap-host", "imap.example.org") == 0
    table = tomllib.loads((home / "config.toml").read_text())["accounts"]["dove"]
    assert table["cloud"] == "custom"
    assert main(["login", "dove"]) == 0
    out = capsys.readouterr().out
    assert "Signed in 'work'" in out
    assert "Signed in 'dove'" in out
