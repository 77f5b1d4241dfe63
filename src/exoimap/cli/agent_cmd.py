"""``exoimap agent``: start, stop, look at, or run in the foreground the resident agent."""

from __future__ import annotations

import time

import click

from exoimap.agent import control
from exoimap.cli.app import EXIT_FAILURE, EXIT_OK, Group
from exoimap.config import Paths, load_config

__all__ = ["app"]

IDLE_TIMEOUT = click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0),
    default=3600.0,
    help="Stop after this many seconds without a request (0: never).",
)


@click.group("agent", cls=Group, no_args_is_help=True)
def app() -> None:
    """A resident process that runs `exoimap sync` for you, without start-up costs.

    While an agent runs, `exoimap sync` hands its work to it over a socket only your user
    can reach and prints what it prints; `exoimap sync --no-agent` runs in its own process
    as always. The agent uses the environment it was started with, reads config.toml
    afresh for every sync, runs one sync at a time (a sync that finds it busy runs in its
    own process), and stops when idle, when stopped, or when exoimap is upgraded. It also
    answers `exoimap token print` (for mail clients) from memory, even during a sync.
    """


@app.command("start")
@IDLE_TIMEOUT
def start(idle_timeout: float) -> None:
    """Start an agent in the background (its log: logs/agent.log)."""
    paths = Paths.from_env()
    load_config(paths)  # a broken config is reported now, not by the first sync
    running = control.status(paths)
    if running is not None:
        click.echo(f"An agent is already running (pid {running['pid']}).")
        return
    started = control.spawn(paths, idle_timeout=idle_timeout)
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
    click.echo(
        f"Agent running: pid {answer['pid']}, since {since}, {answer['requests']} syncs run, "
        f"{activity}, {stops}; {answer['connections_kept']} IMAP connections kept open "
        f"between syncs ({answer['connections_reused']} reuses)."
    )
    click.echo(f"Socket: {paths.agent_socket}")
    raise click.exceptions.Exit(EXIT_OK)


@app.command("serve")
@IDLE_TIMEOUT
def serve(idle_timeout: float) -> None:
    """Run the agent in this process (for a service manager; `start` runs this detached)."""
    from exoimap.agent.server import Agent
    from exoimap.cli import main

    paths = Paths.from_env()
    load_config(paths)
    Agent(paths, run=lambda argv, kept: main(argv, kept=kept), idle_timeout=idle_timeout).serve()
