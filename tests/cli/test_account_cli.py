"""``exoimap account``, ``login``/``logout`` (token-command), ``token show``, ``vault``."""

from __future__ import annotations

import base64
import io
import json
import stat
import sys
import time
import tomllib
from pathlib import Path

import pytest

from exoimap.auth import vault as vault_module
from exoimap.auth.vault import ScryptParams, Vault
from exoimap.cli import main

ACCOUNT = [
    "--email",
    "ada@contoso.example",
    "--client-id",
    "22222222-2222-2222-2222-222222222222",
    "--tenant",
    "contoso.example",
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("EXOIMAP_HOME", str(home))
    monkeypatch.setenv("EXOIMAP_VAULT_PASSPHRASE", "cli test passphrase")
    monkeypatch.setenv("EXOIMAP_NO_KEYRING", "1")
    monkeypatch.setattr(vault_module, "DEFAULT_SCRYPT", ScryptParams(n=2**10, r=8, p=1))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal: never prompt
    return home


def config(home: Path) -> dict[str, object]:
    return tomllib.loads((home / "config.toml").read_text())


def test_add_writes_the_account_and_prints_the_powershell_steps(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["account", "add", "work", *ACCOUNT, "--flow", "client-secret"]) == 0
    out = capsys.readouterr().out
    assert (
        "New-ServicePrincipal -AppId 22222222-2222-2222-2222-222222222222 "
        "-ObjectId <ENTERPRISE_APP_OBJECT_ID>" in out
    )
    assert 'Add-MailboxPermission -Identity "ada@contoso.example"' in out
    assert "Connect-ExchangeOnline -Organization contoso.example" in out
    assert "exoimap account set-secret work" in out
    assert (
        "https://login.microsoftonline.com/contoso.example/v2.0/adminconsent?client_id=22222222-2222-2222-2222-222222222222"
        in out
    )
    table = config(home)["accounts"]["work"]  # type: ignore[index]
    assert table == {
        "email": "ada@contoso.example",
        "client_id": "22222222-2222-2222-2222-222222222222",
        "tenant": "contoso.example",
        "flow": "client-secret",
    }


def test_add_keeps_other_accounts_and_refuses_duplicates(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["account", "add", "work", *ACCOUNT]) == 0
    assert (
        main(["account", "add", "gov", *ACCOUNT, "--cloud", "gcc-high", "--flow", "browser"]) == 0
    )
    out = capsys.readouterr().out
    assert "login.microsoftonline.us" in out
    assert "http://localhost" in out  # the browser flow's redirect URI
    accounts = config(home)["accounts"]
    assert set(accounts) == {"work", "gov"}  # type: ignore[arg-type]
    before = (home / "config.toml").read_bytes()
    assert main(["account", "add", "work", "--email", "x@y.example"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (home / "config.toml").read_bytes() == before
    assert main(["account", "add", "work", "--email", "x@y.example", "--replace"]) == 0
    assert config(home)["accounts"]["work"] == {"email": "x@y.example"}  # type: ignore[index]


def test_add_with_missing_values_and_no_terminal_names_the_key(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["account", "add", "daemon", "--email", "a@b.example", "--flow", "client-secret"]) == 2
    )
    assert "accounts.daemon.tenant" in capsys.readouterr().err
    assert not (home / "config.toml").exists()
    assert main(["account", "add", "x", "--email", "a@b.example", "--flow", "nope"]) == 2
    assert "not one of" in capsys.readouterr().err


def test_add_custom_cloud_needs_authority_and_host(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["account", "add", "lab", *ACCOUNT, "--cloud", "custom"]
    assert main(argv) == 2
    assert "authority" in capsys.readouterr().err
    argv += ["--authority", "https://127.0.0.1:8443/contoso.example", "--imap-host", "127.0.0.1"]
    assert main(argv) == 0
    assert "https://127.0.0.1:8443/contoso.example/v2.0/adminconsent" in capsys.readouterr().out


def test_set_secret_reads_stdin_and_stores_it_encrypted(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["account", "add", "work", *ACCOUNT, "--flow", "client-secret"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("abc8Q~the-client-secret-value-0123456789\n"))
    assert main(["account", "set-secret", "work"]) == 0
    assert "encrypted" in capsys.readouterr().out
    stored = Vault(home / "vault").get_account_secret("work")
    assert stored is not None
    assert stored.reveal() == "abc8Q~the-client-secret-value-0123456789"
    for path in home.rglob("*"):
        if path.is_file():
            assert b"the-client-secret-value" not in path.read_bytes()
    entry = home / "vault" / "account-secret" / "work.bin"
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


def test_set_secret_refuses_an_empty_secret_and_unknown_accounts(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["account", "add", "work", *ACCOUNT]) == 0
    assert main(["account", "set-secret", "work"]) == 2
    assert "nothing was stored" in capsys.readouterr().err
    assert main(["account", "set-secret", "nobody"]) == 2
    assert "no account named 'nobody'" in capsys.readouterr().err


def test_secret_on_the_command_line_is_not_accepted(home: Path) -> None:
    assert main(["account", "add", "work", *ACCOUNT]) == 0
    assert main(["account", "set-secret", "work", "hunter2-secret"]) == 2


def test_list_shows_state(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["account", "list"]) == 0
    assert "No accounts" in capsys.readouterr().out
    assert main(["account", "add", "work", *ACCOUNT]) == 0
    assert main(["account", "add", "mail", "--email", "m@x.example", "--imap-host",
                 "imap.x.example", "--mechanism", "plain", "--cloud", "custom",
                 "--flow", "token-command", "--token-command", "true"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["account", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mail\tm@x.example")
    assert lines[1] == "work\tada@contoso.example\tworldwide\tdevice\tnot signed in"


def make_token() -> str:
    """A JWT-shaped Exchange token (header nonce, so no signature check is possible)."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"aud": "https://outlook.office.com", "scp": "IMAP.AccessAsUser.All",
              "upn": "ada@contoso.example", "iat": now, "exp": now + 900}  # fmt: skip
    return f"{part({'typ': 'JWT', 'nonce': 'n', 'alg': 'RS256'})}.{part(claims)}.c2ln"


def write_broker(tmp_path: Path, token: str) -> str:
    script = tmp_path / "broker.py"
    script.write_text(
        f"import json\nprint(json.dumps({{'access_token': {token!r}, 'expires_in': 900}}))\n"
    )
    return f"{sys.executable} {script}"


def test_token_command_login_and_token_show_never_print_the_token(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = make_token()
    cmd = write_broker(tmp_path, token)
    argv = ["account", "add", "dove", "--email", "ada@contoso.example", "--flow", "token-command"]
    assert main([*argv, "--token-command", cmd, "--imap-host", "imap.lab"]) == 0
    assert main(["login", "dove"]) == 0
    assert main(["token", "show", "dove"]) == 0
    assert main(["logout", "dove"]) == 0
    captured = capsys.readouterr()
    assert token not in captured.out + captured.err
    assert "audience:  https://outlook.office.com" in captured.out
    assert "scopes:    IMAP.AccessAsUser.All" in captured.out
    assert "user:      ada@contoso.example" in captured.out
    assert "expires:   valid until" in captured.out
    assert "Signed in 'dove' as ada@contoso.example" in captured.out


def test_vault_key_file_command(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("EXOIMAP_VAULT_PASSPHRASE")
    assert main(["vault", "status"]) == 0
    assert "No vault yet" in capsys.readouterr().out
    assert main(["vault", "create-key-file"]) == 0
    key = home / "vault.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert main(["vault", "create-key-file"]) == 2  # never overwrites
    assert main(["account", "add", "work", *ACCOUNT, "--flow", "client-secret"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("secret-value-for-key-file\n"))
    assert main(["account", "set-secret", "work"]) == 0
    capsys.readouterr()
    assert main(["vault", "status"]) == 0
    assert "key from key-file" in capsys.readouterr().out
    header = json.loads((home / "vault" / "vault.json").read_text())
    assert header["key_source"] == "key-file"


def test_no_key_source_fails_clearly(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("EXOIMAP_VAULT_PASSPHRASE")
    assert main(["account", "add", "work", *ACCOUNT, "--flow", "client-secret"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-secret-value\n"))
    assert main(["account", "set-secret", "work"]) == 2  # a setup step is missing
    err = capsys.readouterr().err
    assert "EXOIMAP_VAULT_PASSPHRASE" in err
    assert not (home / "vault" / "account-secret").exists()


def test_add_asks_for_missing_values_in_a_terminal(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from exoimap.cli import account

    monkeypatch.setattr(account, "_interactive", lambda: True)  # as if stdin were a terminal
    answers = (
        "ada@contoso.example\nclient-secret\ngcc-high\n"
        "12341234-1234-1234-1234-123412341234\ncontoso.example\n"
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(answers))
    assert main(["account", "add", "asked"]) == 0
    assert config(home)["accounts"]["asked"] == {  # type: ignore[index]
        "email": "ada@contoso.example",
        "cloud": "gcc-high",
        "tenant": "contoso.example",
        "client_id": "12341234-1234-1234-1234-123412341234",
        "flow": "client-secret",
    }
    out = capsys.readouterr().out
    assert "-ExchangeEnvironmentName O365USGovGCCHigh" in out
    assert "login.microsoftonline.us/contoso.example/v2.0/adminconsent" in out
