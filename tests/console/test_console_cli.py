"""``exoimap console`` refuses what it must before serving: plain HTTP off loopback, half a
TLS pair, a bad --listen, missing or wrong settings (one line each, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exoimap.cli import EXIT_USAGE, main
from exoimap.console.settings import load_settings
from exoimap.errors import ConfigError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen", "0.0.0.0:8443"], "0.0.0.0 is not a loopback address"),
        (["--cert", "c.pem"], "--cert and --key go together"),
        (["--listen", "nonsense"], "--listen wants HOST:PORT"),
    ],
)
def test_console_refuses_unsafe_or_bad_listening(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["console", *argv]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_console_without_settings_says_what_to_write(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["console", "--listen", "127.0.0.1:0"])
    err = capsys.readouterr().err
    assert code != 0
    assert "no console settings at" in err
    assert "authority and client_id" in err
    assert "Traceback" not in err


def test_settings_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "console.toml"
    path.write_text(
        'authority = "https://login.example/t/"\nclient_id = "c"\n'
        '[scopes]\nauditor = ["*@contoso.com"]\n'
    )
    settings = load_settings(path, public_url="https://c.example", environ={})
    assert settings.authority == "https://login.example/t"
    assert settings.redirect_uri == "https://c.example/auth/callback"
    assert settings.scopes == {"auditor": ("*@contoso.com",)}
    assert settings.client_secret is None
    path.write_text('authority = "a"\nclient_id = "c"\n[scopes]\nself = ["x"]\n')
    with pytest.raises(ConfigError, match="unknown role 'self'"):
        load_settings(path, public_url="https://c.example", environ={})
    path.write_text('authority = "a"\nclient_id = "c"\nclient_secret = "oops"\n')
    with pytest.raises(ConfigError, match="unknown console setting 'client_secret'"):
        load_settings(path, public_url="https://c.example", environ={})
