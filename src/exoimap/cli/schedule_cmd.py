"""``exoimap schedule install|remove|status``: unattended backups (see
:mod:`exoimap.app.schedule` and docs/scheduling.md)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from exoimap.app import schedule as s
from exoimap.cli.account_names import account_names, select_accounts
from exoimap.cli.app import EXIT_FAILURE, EXIT_OK, Group
from exoimap.cli.output import echo
from exoimap.config import Paths, load_config
from exoimap.errors import ConfigError

__all__ = ["app"]


@click.group("schedule", cls=Group, no_args_is_help=True)
def app() -> None:
    """Run backups unattended: systemd user units, or a cron line where systemd is absent."""


def env_file(paths: Paths) -> Path:
    """The file of ``KEY=value`` lines the units read (the user writes it, mode 0600)."""
    return paths.config_dir / "schedule.env"


def _warn_about_passphrase(paths: Paths) -> None:
    if os.environ.get("EXOIMAP_VAULT_PASSPHRASE") and not os.environ.get("EXOIMAP_VAULT_KEY_FILE"):
        echo(
            "note: EXOIMAP_VAULT_PASSPHRASE is not copied into the schedule (it is a secret); "
            f"the systemd units read it from {env_file(paths)} (create it with mode 0600), "
            "or cron needs a vault with a key file (see docs/scheduling.md)",
            err=True,
        )


def _fail(message: str) -> None:
    echo(f"exoimap: error: {message}", err=True)
    raise click.exceptions.Exit(EXIT_FAILURE)


def _systemctl(*args: str) -> None:
    done = s.systemctl(*args)
    if done.returncode != 0:
        _fail(f"systemctl --user {' '.join(args)} failed: {done.stderr.strip()}")


@app.command("install")
@account_names("back up")
@click.option("--every", default=None, help="Sync at this interval: 30m, 1h, 1d ... [default: 1h]")
@click.option("--watch", "watch_mode", is_flag=True, help="Run `exoimap watch` as a service.")
@click.option(
    "--agent",
    "in_agent",
    is_flag=True,
    help="With --watch: run the watch inside the resident agent (`agent serve --watch`).",
)
@click.option(
    "--print", "print_only", is_flag=True, help="Show the units and the cron line; install nothing."
)
def install(
    *,
    names: tuple[str, ...],
    all_accounts: bool,
    every: str | None,
    watch_mode: bool,
    in_agent: bool,
    print_only: bool,
) -> None:
    """Install (or replace) the schedule: a timer for periodic syncs, or a watch service."""
    if every is not None and watch_mode:
        raise ConfigError("give --every or --watch, not both")
    if in_agent and not watch_mode:
        raise ConfigError("--agent goes with --watch")
    paths = Paths.from_env()
    select_accounts(load_config(paths), names, all_accounts)  # the names must exist
    plan = s.Schedule(
        names=names,
        every=None if watch_mode else s.parse_every(every or "1h"),
        agent=in_agent,
    )
    contents = s.units(plan, env_file=env_file(paths))
    _warn_about_passphrase(paths)
    if print_only:
        for name, text in contents.items():
            echo(f"# {s.unit_dir() / name}\n{text}")
        echo(f"# cron\n{s.cron_line(plan)}")
        return
    if not s.systemctl_works():
        echo("systemd (user) is not available here; add this line with `crontab -e`:")
        echo(s.cron_line(plan))
        return
    _remove_units()
    written = s.install_units(contents, s.unit_dir())
    for command in s.enable_commands(list(contents)):
        _systemctl(*command)
    for path in written:
        echo(f"installed {path}")
    started = s.WATCH_SERVICE if watch_mode else s.SYNC_TIMER
    echo(f"started {started}; see `exoimap schedule status`")


def _remove_units() -> list[str]:
    removed = []
    for path in s.installed_units(s.unit_dir()):
        if path.name != s.SYNC_SERVICE:  # the timer starts it; it has no enablement
            s.systemctl("disable", "--now", path.name)
        path.unlink()
        removed.append(str(path))
    return removed


@app.command("remove")
def remove() -> None:
    """Stop and remove the schedule's units (or say which cron line to delete)."""
    if not s.systemctl_works():
        echo("systemd (user) is not available here: delete the exoimap line with `crontab -e`")
        return
    removed = _remove_units()
    _systemctl("daemon-reload")
    for path in removed:
        echo(f"removed {path}")
    if not removed:
        echo("no exoimap units were installed")


@app.command("status")
def status() -> None:
    """Whether a schedule is installed and running. Exit code 0 when one is."""
    if not s.systemctl_works():
        echo("systemd (user) is not available here: a schedule, if any, is in `crontab -l`")
        raise click.exceptions.Exit(EXIT_FAILURE)
    installed = s.installed_units(s.unit_dir())
    if not installed:
        echo("no schedule installed: `exoimap schedule install --every 1h` or `--watch`")
        raise click.exceptions.Exit(EXIT_FAILURE)
    for path in installed:
        state = s.systemctl("is-active", path.name).stdout.strip() or "unknown"
        echo(f"{path.name}: {state}")
    raise click.exceptions.Exit(EXIT_OK)
