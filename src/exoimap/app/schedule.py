"""``exoimap schedule``: run backups unattended, as systemd user units or a cron line.

Two modes: periodic (``exoimap-sync.timer`` starting the oneshot ``exoimap-sync.service``)
and watch (``exoimap-watch.service``, ``Type=notify`` with a watchdog: see
:mod:`exoimap.app.watch_service`), running ``exoimap watch`` or, with ``agent``, the
resident agent with its watch (``agent serve --watch``, which notifies the same way).
The units run this very Python (``sys.executable -m exoimap``) with the home and vault
key file of the installing shell; a vault passphrase is never written into a unit (a unit
file is not a place for a secret): unattended runs use a key file. Exit code 3 (the
sign-in needs the user) is not restarted in a loop.

Without a user systemd (containers, macOS, BSD) the caller prints :func:`cron_line`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from exoimap.errors import ConfigError

__all__ = [
    "SYNC_SERVICE",
    "SYNC_TIMER",
    "WATCH_SERVICE",
    "Schedule",
    "cron_line",
    "enable_commands",
    "install_units",
    "installed_units",
    "parse_every",
    "systemctl",
    "systemctl_works",
    "unit_dir",
    "units",
]

SYNC_SERVICE = "exoimap-sync.service"
SYNC_TIMER = "exoimap-sync.timer"
WATCH_SERVICE = "exoimap-watch.service"
#: What a unit's environment may carry over from the installing shell (never a secret).
CARRIED_ENV = ("EXOIMAP_HOME", "EXOIMAP_VAULT_KEY_FILE", "EXOIMAP_NO_KEYRING")
#: Watchdog for the watch service: its heartbeat is every 15 s at most.
WATCHDOG_SEC = 120

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> int:
    """``30m``, ``1h``, ``2d`` -> seconds (at least a minute)."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text.lower())
    if match is None:
        raise ConfigError(f"--every {text!r}: give a number and a unit, e.g. 30m, 1h or 1d")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 60:
        raise ConfigError(f"--every {text!r}: at least 1m")
    return seconds


@dataclass(frozen=True)
class Schedule:
    """What to run and how often (``every`` None: watch mode)."""

    names: tuple[str, ...]
    every: int | None = None
    python: str = sys.executable
    #: Watch mode inside the resident agent (``agent serve --watch``), which also runs
    #: ``exoimap sync`` and answers ``token print`` for mail clients.
    agent: bool = False

    @property
    def watch(self) -> bool:
        return self.every is None

    def command(self) -> list[str]:
        accounts = self.names or ("--all",)
        if self.watch and self.agent:
            return [self.python, "-m", "exoimap", "agent", "serve", "--idle-timeout", "0",
                    "--watch", *accounts]  # fmt: skip
        verb = "watch" if self.watch else "sync"
        return [self.python, "-m", "exoimap", verb, *accounts]


def _environment(environ: Mapping[str, str]) -> list[str]:
    lines = []
    for key in CARRIED_ENV:
        value = environ.get(key)
        if value:
            quoted = value.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'Environment="{key}={quoted}"')
    return lines


def _exec(schedule: Schedule) -> str:
    # systemd's quoting is close enough to the shell's for paths and account names
    return "ExecStart=" + shlex.join(schedule.command())


def units(
    schedule: Schedule, environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> dict[str, str]:
    """The unit files to install: name -> content. ``env_file``: an optional file (0600,
    the user's own) of ``KEY=value`` lines the service reads, for a vault passphrase."""
    env = _environment(os.environ if environ is None else environ)
    if env_file is not None:
        env.append(f"EnvironmentFile=-{env_file}")  # "-": no file, no error
    if schedule.watch:
        service = [
            "[Unit]",
            f"Description=exoimap {'agent ' if schedule.agent else ''}watch: keep mail "
            "archives current",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=notify",
            "NotifyAccess=main",
            f"WatchdogSec={WATCHDOG_SEC}",
            *env,
            _exec(schedule),
            "Restart=on-failure",
            "RestartSec=30",
            "# 3: the sign-in needs the user (`exoimap login NAME`); restarting cannot help",
            "RestartPreventExitStatus=3",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
        return {WATCH_SERVICE: "\n".join(service)}
    every = schedule.every
    assert every is not None
    service = [
        "[Unit]",
        "Description=exoimap sync: back up mail archives",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        *env,
        _exec(schedule),
        "Nice=10",
        "IOSchedulingClass=idle",
        "",
    ]
    timer = [
        "[Unit]",
        f"Description=exoimap sync every {_human(every)}",
        "",
        "[Timer]",
        "OnBootSec=5min",
        f"OnUnitActiveSec={every}s",
        # spread the load a little when many machines share a tenant
        f"RandomizedDelaySec={min(every // 10, 300)}s",
        f"Unit={SYNC_SERVICE}",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ]
    return {SYNC_SERVICE: "\n".join(service), SYNC_TIMER: "\n".join(timer)}


def _human(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _cron_times(every: int) -> str:
    """The cron time fields for ``every`` seconds; ConfigError when cron cannot say it."""
    minutes = every // 60
    if every % 60 == 0 and minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *" if minutes > 1 else "* * * * *"
    hours = every // 3600
    if every % 3600 == 0 and hours < 24 and 24 % hours == 0:
        return f"0 */{hours} * * *" if hours > 1 else "0 * * * *"
    if every == 86400:
        return "0 3 * * *"
    raise ConfigError(
        f"cron cannot run something every {_human(every)}: choose a divisor of an hour "
        "(e.g. 15m), of a day (e.g. 6h), or 1d"
    )


def cron_line(schedule: Schedule, environ: Mapping[str, str] | None = None) -> str:
    """The crontab line for ``schedule`` (``@reboot`` for watch mode)."""
    env = os.environ if environ is None else environ
    assignments = [f"{k}={shlex.quote(env[k])}" for k in CARRIED_ENV if env.get(k)]
    times = "@reboot" if schedule.watch else _cron_times(schedule.every or 0)
    command = shlex.join(schedule.command())
    return " ".join([times, *assignments, command])


def unit_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where systemd looks for the user's units."""
    env = os.environ if environ is None else environ
    config = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(config) / "systemd" / "user"


def systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    """``systemctl --user ARGS`` (its output captured)."""
    binary = shutil.which("systemctl") or "systemctl"
    return subprocess.run(  # noqa: S603 - fixed program, arguments of our own
        [binary, "--user", *args], capture_output=True, text=True, timeout=60, check=False
    )


def systemctl_works() -> bool:
    """Whether a user systemd answers (not in most containers, nor on macOS)."""
    if shutil.which("systemctl") is None:
        return False
    try:
        return systemctl("show-environment").returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def install_units(contents: Mapping[str, str], directory: Path) -> list[Path]:
    """Write the unit files (replacing earlier ones); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in contents.items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def installed_units(directory: Path) -> list[Path]:
    return [
        directory / n for n in (SYNC_TIMER, SYNC_SERVICE, WATCH_SERVICE) if (directory / n).exists()
    ]


def enable_commands(names: Sequence[str]) -> list[list[str]]:
    """What starts the installed units: the timer, or the watch service."""
    target = SYNC_TIMER if SYNC_TIMER in names else WATCH_SERVICE
    return [["daemon-reload"], ["enable", "--now", target]]
