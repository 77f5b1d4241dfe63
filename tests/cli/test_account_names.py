"""Issue 23, item 7: every command that acts on accounts takes ``NAME...`` or ``--all`` (one
rule, in ``exoimap.cli.account_names``); with neither it says how to name them."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path

import pytest

from exoimap.cli import EXIT_FAILURE, EXIT_PARTIAL, EXIT_USAGE, main
from exoimap.sandbox.tenant import SandboxTenant

from .sync_helpers import isolated_home, signed_in_account

COMMANDS = [
    ["sync"],
    ["verify"],
    ["archive", "stats"],
    ["login"],
    ["logout"],
    ["token", "show"],
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


def broker(tmp_path: Path, name: str, *, fails: bool = False) -> str:
    """A token command printing an Exchange-shaped token for ``name``@contoso (or failing)."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"aud": "https://outlook.office.com", "scp": "IMAP.AccessAsUser.All",
              "upn": f"{name}@contoso.example", "iat": now, "exp": now + 900}  # fmt: skip
    token = f"{part({'typ': 'JWT', 'alg': 'RS256'})}.{part(claims)}.c2ln"
    script = tmp_path / f"broker-{name}.py"
    body = "import sys\nsys.exit('no session')\n" if fails else f"print({token!r})\n"
    script.write_text(body)
    return f"{sys.executable} {script}"


def add_broker_account(tmp_path: Path, name: str, *, fails: bool = False) -> None:
    assert main(["account", "add", name, "--email", f"{name}@contoso.example",
                 "--flow", "token-command", "--token-command", broker(tmp_path, name, fails=fails),
                 "--cloud", "worldwide", "--imap-host", "127.0.0.1"]) == 0  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_with_no_name_each_command_says_how_to_name_accounts(
    command: list[str], home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == EXIT_USAGE
    assert "no accounts configured" in capsys.readouterr().err
    add_broker_account(tmp_path, "b")
    add_broker_account(tmp_path, "a")
    capsys.readouterr()
    assert main(command) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == ("exoimap: error: name one or more accounts, or use --all (accounts: a, b).\n")
    assert main([*command, "a", "--all"]) == EXIT_USAGE
    assert "give account names or --all, not both" in capsys.readouterr().err
    assert main([*command, "a", "nosuch"]) == EXIT_USAGE
    assert "no account named 'nosuch' (accounts: a, b)" in capsys.readouterr().err


def test_with_one_account_no_name_means_that_account(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_broker_account(tmp_path, "only")
    capsys.readouterr()
    assert main(["token", "show"]) == 0
    assert "user:      only@contoso.example" in capsys.readouterr().out.splitlines()


def test_login_token_show_and_logout_take_several_names_or_all(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b", "c"):
        add_broker_account(tmp_path, name)
    capsys.readouterr()
    assert main(["login", "a", "b", "a"]) == 0  # each once, in the order given
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in out] == ["'a'", "'b'"]
    assert main(["token", "show", "--all"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("user:")] == [
        f"user:      {name}@contoso.example" for name in ("a", "b", "c")
    ]
    assert main(["logout", "c", "b"]) == 0
    # (a token command's tokens are never stored)
    assert capsys.readouterr().out.splitlines() == [
        "'c' had no stored sign-in.",
        "'b' had no stored sign-in.",
    ]


def test_one_failing_account_does_not_stop_the_others(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_broker_account(tmp_path, "a")
    add_broker_account(tmp_path, "broken", fails=True)
    add_broker_account(tmp_path, "c")
    capsys.readouterr()
    assert main(["login", "--all"]) == EXIT_PARTIAL
    captured = capsys.readouterr()
    assert "Signed in 'a'" in captured.out
    assert "Signed in 'c'" in captured.out
    (error,) = captured.err.splitlines()
    assert error.startswith("broken: error: account 'broken': the token command")
    # every account failing alike keeps that failure's exit code
    assert main(["archive", "stats", "a", "c"]) == EXIT_FAILURE
    errors = capsys.readouterr().err.splitlines()
    assert [e.split(":")[0] for e in errors] == ["a", "c"]
    assert all("no archive at" in e for e in errors)


def test_sync_all_then_verify_and_stats_of_several_accounts(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "one", {"INBOX": 2})
    signed_in_account(sandbox_tenant, "two", {"INBOX": 1, "Archive": 1})
    capsys.readouterr()
    assert main(["sync", "--all"]) == 0
    out = capsys.readouterr().out
    assert "one: fetched 2 messages" in out
    assert "two: fetched 2 messages" in out
    assert main(["verify", "two", "one"]) == 0
    out = capsys.readouterr().out
    verdicts = [line.split(":")[0] for line in out.splitlines() if ": verify shallow" in line]
    assert verdicts == ["two", "one"]
    assert main(["archive", "stats", "--all"]) == 0
    out = capsys.readouterr().out
    assert "one: 2 messages" in out
    assert "two: 2 messages" in out
    assert main(["verify", "one", "two", "--restore"]) == EXIT_USAGE
    assert "name one account" in capsys.readouterr().err
