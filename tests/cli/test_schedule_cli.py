"""``exoimap schedule``: the systemd units it writes (checked by ``systemd-analyze verify``),
the cron line where there is no user systemd, and what is never written into them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exoimap.app.schedule import (
    SYNC_SERVICE,
    SYNC_TIMER,
    WATCH_SERVICE,
    Schedule,
    cron_line,
    parse_every,
    units,
)
from exoimap.cli import EXIT_USAGE, main
from exoimap.errors import ConfigError

from .sync_helpers import PASSPHRASE, isolated_home

ENV = {
    "EXOIMAP_HOME": "/home/ann/exo data",
    "EXOIMAP_VAULT_KEY_FILE": "/home/ann/.exoimap.key",
    "EXOIMAP_VAULT_PASSPHRASE": "never in a unit",
}


def _verify(directory: Path, contents: dict[str, str], tmp_path: Path) -> None:
    """systemd's own check of the unit files: no error, no warning."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "these tests need systemd-analyze (Debian: apt-get install systemd)"
    directory.mkdir()
    for name, text in contents.items():
        (directory / name).write_text(text)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        [analyze, "verify", "--user", *(str(directory / n) for n in contents)],
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_periodic_units_run_this_python_with_the_home_and_key_file(tmp_path: Path) -> None:
    contents = units(Schedule(("work", "home box"), every=3600), ENV, tmp_path / "s.env")
    assert sorted(contents) == [SYNC_SERVICE, SYNC_TIMER]
    service, timer = contents[SYNC_SERVICE], contents[SYNC_TIMER]
    assert "Type=oneshot" in service
    assert f"ExecStart={sys.executable} -m exoimap sync work 'home box'" in service
    assert 'Environment="EXOIMAP_HOME=/home/ann/exo data"' in service
    assert 'Environment="EXOIMAP_VAULT_KEY_FILE=/home/ann/.exoimap.key"' in service
    assert "PASSPHRASE" not in service + timer
    assert f"EnvironmentFile=-{tmp_path / 's.env'}" in service  # where a passphrase may go
    assert "OnUnitActiveSec=3600s" in timer
    assert f"Unit={SYNC_SERVICE}" in timer
    assert "WantedBy=timers.target" in timer
    _verify(tmp_path / "units", contents, tmp_path)


def test_the_watch_unit_is_a_notify_service_with_a_watchdog(tmp_path: Path) -> None:
    contents = units(Schedule((), every=None), ENV)
    assert list(contents) == [WATCH_SERVICE]
    service = contents[WATCH_SERVICE]
    assert "Type=notify" in service
    assert "WatchdogSec=120" in service
    assert f"ExecStart={sys.executable} -m exoimap watch --all" in service
    assert "RestartPreventExitStatus=3" in service  # a sign-in needing the user: no loop
    assert "PASSPHRASE" not in service
    _verify(tmp_path / "units", contents, tmp_path)


def test_the_agent_watch_unit_is_the_same_notify_service_running_the_agent(
    tmp_path: Path,
) -> None:
    contents = units(Schedule(("work",), every=None, agent=True), ENV)
    assert list(contents) == [WATCH_SERVICE]
    service = contents[WATCH_SERVICE]
    assert "Description=exoimap agent watch: keep mail archives current" in service
    assert "Type=notify" in service
    assert "NotifyAccess=main" in service  # the agent itself notifies, not a child
    assert "WatchdogSec=120" in service
    command = f"{sys.executable} -m exoimap agent serve --idle-timeout 0 --watch work"
    assert f"ExecStart={command}" in service
    assert "RestartPreventExitStatus=3" in service  # what the agent exits with, as watch does
    assert cron_line(Schedule(("work",), agent=True), {}) == f"@reboot {command}"
    _verify(tmp_path / "units", contents, tmp_path)


@pytest.mark.parametrize(
    ("every", "times"),
    [
        ("15m", "*/15 * * * *"),
        ("1m", "* * * * *"),
        ("1h", "0 * * * *"),
        ("6h", "0 */6 * * *"),
        ("1d", "0 3 * * *"),
    ],
)
def test_cron_lines(every: str, times: str) -> None:
    line = cron_line(Schedule(("work",), every=parse_every(every)), ENV)
    assert line == (
        f"{times} EXOIMAP_HOME='/home/ann/exo data' "
        f"EXOIMAP_VAULT_KEY_FILE=/home/ann/.exoimap.key {sys.executable} -m exoimap sync work"
    )


def test_watch_mode_in_cron_starts_at_boot() -> None:
    assert cron_line(Schedule(("work",)), {}) == f"@reboot {sys.executable} -m exoimap watch work"


@pytest.mark.parametrize(
    ("every", "message"),
    [
        ("7m", "cron cannot run something every 7m"),
        ("5h", "cron cannot run something every 5h"),
        ("2d", "cron cannot run something every 2d"),
    ],
)
def test_intervals_cron_cannot_say_are_refused(every: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cron_line(Schedule(("work",), every=parse_every(every)), {})


@pytest.mark.parametrize("every", ["hourly", "10", "30s", "-1h"])
def test_bad_intervals_are_usage_errors(every: str) -> None:
    with pytest.raises(ConfigError, match="--every"):
        parse_every(every)


def _account(home: Path) -> None:
    config = home / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[accounts.work]\nemail = "ann@example.com"\n')


def test_install_without_a_user_systemd_prints_the_cron_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = isolated_home(tmp_path, monkeypatch)
    _account(home)
    monkeypatch.setenv("PATH", str(tmp_path / "no-systemd"))  # no systemctl on this machine
    assert main(["schedule", "install", "--every", "30m", "work"]) == 0
    captured = capsys.readouterr()
    assert "add this line with `crontab -e`" in captured.out
    assert f"*/30 * * * * EXOIMAP_HOME={home} EXOIMAP_NO_KEYRING=1 " in captured.out
    assert captured.out.rstrip().endswith(f"{sys.executable} -m exoimap sync work")
    # the passphrase of this shell is not carried over, and the user is told what to do
    assert PASSPHRASE not in captured.out
    assert f"read it from {home / 'schedule.env'}" in captured.err
    assert main(["schedule", "status"]) == 1
    assert "crontab -l" in capsys.readouterr().out


def test_install_print_shows_units_and_checks_the_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = isolated_home(tmp_path, monkeypatch)
    _account(home)
    assert main(["schedule", "install", "--watch", "--print", "work"]) == 0
    out = capsys.readouterr().out
    assert f"/systemd/user/{WATCH_SERVICE}" in out
    assert "Type=notify" in out
    assert f"@reboot EXOIMAP_HOME={home}" in out
    assert main(["schedule", "install", "--watch", "nobody"]) == EXIT_USAGE
    assert "nobody" in capsys.readouterr().err
    assert main(["schedule", "install", "--watch", "--every", "1h", "work"]) == EXIT_USAGE
    assert "not both" in capsys.readouterr().err
    assert main(["schedule", "install", "--agent", "work"]) == EXIT_USAGE
    assert "--agent goes with --watch" in capsys.readouterr().err
    assert main(["schedule", "install", "--watch", "--agent", "--print", "work"]) == 0
    assert "-m exoimap agent serve --idle-timeout 0 --watch work" in capsys.readouterr().out
