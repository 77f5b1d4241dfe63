"""The CLI skeleton: --version, config path/show, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exoimap import __version__
from exoimap.cli import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path))
    return tmp_path


def test_version_from_console_script(home: Path) -> None:
    exe = Path(sys.executable).parent / "exoimap"
    result = subprocess.run(
        [str(exe), "--version"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "EXOIMAP_HOME": str(home)},
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"exoimap {__version__}"


def test_config_path(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(home / "config.toml")


def test_config_show(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "config.toml").write_text(
        '[accounts.work]\nemail = "a@contoso.com"\nflow = "token-command"\n'
        'token_command = ["broker", "--password=hunter2hunter2"]\nimap_host = "mail.test"\n'
    )
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert 'email = "a@contoso.com"' in out
    assert "hunter2hunter2" not in out
    assert "--password=***" in out


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('[accounts.a]\nemail = "a@b.c"\nbogus = 1\n', "accounts.a.bogus"),
        ('[accounts.a]\nemail = "a@b.c"\nimap_port = "x"\n', "accounts.a.imap_port"),
    ],
)
def test_bad_config_exits_2_naming_the_key(
    home: Path, capsys: pytest.CaptureFixture[str], body: str, key: str
) -> None:
    (home / "config.toml").write_text(body)
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert f"config.toml: {key}:" in err


def test_unknown_command_is_usage_error(home: Path) -> None:
    assert main(["no-such-command"]) == 2


def test_log_file_is_written_under_data_dir(home: Path) -> None:
    assert main(["-vv", "config", "path"]) == 0
    assert (home / "logs" / "exoimap.log").exists()
