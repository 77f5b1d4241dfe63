"""``exoimap agent``: start, stop, look at, or run in the foreground the resident agent."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from exoimap.agent import control
from exoimap.cli.account_names import account_names, select_accounts
from exoimap.cli.app import EXIT_FAILURE, EXIT_OK, EXIT_SIGN_IN, Group
from exoimap.cli.metrics import metrics_port_option
from exoimap.cli.output import echo
from exoimap.cli.watch_cmd import default_health_file, watch_options, watch_settings
from exoimap.config import AccountConfig, Config, Paths, load_config

__all__ = ["app"]

IDLE_TIMEOUT = click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0),
    default=3600.0,
    help="Stop after this many seconds without a request (0: never).",
)


WATCH = click.option(
    "--watch",
    is_flag=True,
    help="Also keep the archives of NAME... (or --all) current, as `exoimap watch` does, "
    "for as long as the agent runs.",
)


def _watched(
    config: Config,
    watch: bool,
    names: Sequence[str],
    all_accounts: bool,
    metrics_port: int | None,
) -> list[AccountConfig]:
    """The accounts to watch: none without ``--watch``; names need ``--watch``."""
    if not watch:
        if names or all_accounts or metrics_port is not None:
            raise click.UsageError("account names, --all and --metrics-port go with --watch")
        return []
    return select_accounts(config, names, all_accounts)


def _watch_options(
    accounts: Sequence[AccountConfig], all_accounts: bool, **given: Any
) -> list[str]:
    """The ``agent serve`` options that watch ``accounts`` as asked."""
    if not accounts:
        return []
    options = ["--watch", *(["--all"] if all_accounts else [a.name for a in accounts])]
    for name in ("idle_interval", "poll_interval", "full_sync_interval"):
        options += [f"--{name.replace('_', '-')}", f"{given[name]:g}"]
    if given["health_file"] is not None:
        options += ["--health-file", str(given["health_file"])]
    if given["metrics_port"] is not None:
        options += ["--metrics-port", str(given["metrics_port"])]
    return options


@click.group("agent", cls=Group, no_args_is_help=True)
def app() -> None:
    """A resident process that runs `exoimap sync` for you, without start-up costs.

    While an agent runs, `exoimap sync` hands its work to it over a socket only your user
    can reach and prints what it prints; `exoimap sync --no-agent` runs in its own process
    as always. The agent uses the environment it was started with, reads config.toml
    afresh for every sync, runs one sync at a time (a sync that finds it busy runs in its
    own process), and stops when idle, when stopped, or when exoimap is upgraded. It also
    answers `exoimap token print` (for mail clients) from memory, even during a sync.
    With --watch it also keeps archives current (IDLE, polling, syncs: what `exoimap watch`
    does), and then it does not stop when idle.
    """


@app.command("start")
@IDLE_TIMEOUT
@WATCH
@account_names("watch (with --watch)")
@watch_options
@metrics_port_option
def start(
    *,
    idle_timeout: float,
    watch: bool,
    names: tuple[str, ...],
    all_accounts: bool,
    **given: Any,
) -> None:
    """Start an agent in the background (its log: logs/agent.log)."""
    paths = Paths.from_env()
    config = load_config(paths)  # a broken config is reported now, not by the first sync
    accounts = _watched(config, watch, names, all_accounts, given["metrics_port"])
    running = control.status(paths)
    if running is not None:
        click.echo(f"An agent is already running (pid {running['pid']}).")
        if accounts and not running.get("watch"):
            echo(
                "It does not watch: stop it (`exoimap agent stop`) and start it again "
                "with --watch.",
                err=True,
            )
            raise click.exceptions.Exit(EXIT_FAILURE)
        return
    options = _watch_options(accounts, all_accounts, **given)
    started = control.spawn(paths, idle_timeout=idle_timeout, options=options)
    if accounts:
        watched = ", ".join(a.name for a in accounts)
        click.echo(
            f"Agent started (pid {started['pid']}), watching {watched}: `exoimap sync` "
            "runs in it too. It stops only with `exoimap agent stop`, or when every "
            "watched account needs a sign-in and it is idle."
        )
        return
    idle = f"after {idle_timeout:g} s without a request" if idle_timeout else "only when stopped"
    click.echo(
        f"Agent started (pid {started['pid']}): `exoimap sync` now runs in it. "
        f"It stops {idle}, or with `exoimap agent stop`."
    )


@app.command("stop")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    help="How long to wait for a running sync to finish.",
)
def stop(timeout: float) -> None:
    """Stop the agent once the sync it is running (if any) has finished."""
    paths = Paths.from_env()
    if not control.request_stop(paths):
        click.echo("No agent is running.")
        return
    if not control.wait_stopped(paths, timeout):
        click.echo(f"The agent is still finishing a sync after {timeout:g} s.", err=True)
        raise click.exceptions.Exit(EXIT_FAILURE)
    click.echo("Agent stopped.")


@app.command("status")
def status() -> None:
    """Say whether an agent runs, since when and how busy (exit code 1 if none)."""
    paths = Paths.from_env()
    answer = control.status(paths)
    if answer is None:
        click.echo("No agent is running.")
        raise click.exceptions.Exit(EXIT_FAILURE)
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(answer["started"])))
    timeout = float(answer["idle_timeout"])
    activity = "busy" if answer["busy"] else f"idle for {answer['idle_for']} s"
    stops = f"stops after {timeout:g} s idle" if timeout else "never stops when idle"
    if answer.get("watch") and answer["watch"]["active"]:
        stops = "does not stop while it watches"
    click.echo(
        f"Agent running: pid {answer['pid']}, since {since}, {answer['requests']} syncs run, "
        f"{activity}, {stops}; {answer['connections_kept']} IMAP connections kept open "
        f"between syncs ({answer['connections_reused']} reuses)."
    )
    click.echo(f"Socket: {paths.agent_socket}")
    _print_watch(answer.get("watch"))
    raise click.exceptions.Exit(EXIT_OK)


def _print_watch(watch: dict[str, Any] | None) -> None:
    if not watch:
        return
    if not watch["active"]:
        ended = f": {watch['error']}" if watch["error"] else ""
        echo(f"The watch has ended{ended}.")
    for box in watch["mailboxes"]:
        idle = ", ".join(box["idle_folders"]) or "none"
        line = f"Watching {box['account']}: {box['state']} (IDLE on {idle}), {box['syncs']} syncs"
        if box["last_sync"] is not None:
            line += f", last at {time.strftime('%H:%M:%S', time.localtime(box['last_sync']))}"
        if box["last_error"]:
            line += f"; last error: {box['last_error']}"
        echo(line)
    echo(f"Health file: {watch['health_file']}")
    if watch["metrics_url"]:
        echo(f"Metrics: {watch['metrics_url']}")


@app.command("serve")
@IDLE_TIMEOUT
@WATCH
@account_names("watch (with --watch)")
@watch_options
@metrics_port_option
def serve(
    *,
    idle_timeout: float,
    watch: bool,
    names: tuple[str, ...],
    all_accounts: bool,
    idle_interval: float,
    poll_interval: float,
    full_sync_interval: float,
    health_file: Path | None,
    metrics_port: int | None,
) -> None:
    """Run the agent in this process (for a service manager; `start` runs this detached)."""
    from exoimap.agent.server import Agent
    from exoimap.agent.watching import AgentWatch
    from exoimap.app.watch_health import HealthFile
    from exoimap.cli import main

    paths = Paths.from_env()
    accounts = _watched(load_config(paths), watch, names, all_accounts, metrics_port)
    watching = None
    if accounts:
        from exoimap.net.tls import lean_tls_buffers

        lean_tls_buffers()  # about three idle TLS connections a watched mailbox
        settings = watch_settings(idle_interval, poll_interval, full_sync_interval)
        health = HealthFile(health_file or default_health_file(paths))
        watching = AgentWatch(paths, accounts, settings, health, metrics_port=metrics_port)
    Agent(
        paths,
        run=lambda argv, kept: main(argv, kept=kept),
        idle_timeout=idle_timeout,
        watch=watching,
    ).serve()
    # as `exoimap watch` exits: 3 when the watch ended for want of a sign-in (a service
    # manager must not restart it in a loop), 1 when it failed
    if watching is not None and watching.needs_signin:
        raise click.exceptions.Exit(EXIT_SIGN_IN)
    if watching is not None and watching.error:
        raise click.exceptions.Exit(EXIT_FAILURE)
