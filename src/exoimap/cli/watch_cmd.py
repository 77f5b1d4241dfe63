"""``exoimap watch NAME...``: keep archives current until stopped (see
:mod:`exoimap.app.watch`). Prints one line per sync that changed something or failed and one
per change of a mailbox's state; exits 0 when stopped (Ctrl-C, SIGTERM), 3 when every
account's sign-in needs the user."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from exoimap.app import resident
from exoimap.app.accounts import AccountResult
from exoimap.app.watch import MailboxHealth, WatchSettings
from exoimap.app.watch_health import HealthFile
from exoimap.app.watch_service import WatchService, serve_watch
from exoimap.audit import auditing
from exoimap.auth.audit_key import audit_key_for
from exoimap.cli.account_names import account_names, select_accounts
from exoimap.cli.app import EXIT_OK, EXIT_SIGN_IN, PATH
from exoimap.cli.metrics import metrics_endpoint, metrics_listeners, metrics_port_option
from exoimap.cli.output import echo
from exoimap.cli.provider import watch_provider
from exoimap.config import Paths, load_config
from exoimap.net.tls import lean_tls_buffers

__all__ = ["default_health_file", "watch", "watch_options", "watch_settings"]

_DEFAULTS = WatchSettings()
F = TypeVar("F", bound=Callable[..., Any])


def default_health_file(paths: Paths) -> Path:
    return paths.data_dir / "run" / "watch-health.json"


def _print_sync(result: AccountResult) -> None:
    if result.error is not None:
        echo(f"{result.account}: sync failed: {result.error}", err=True)
        return
    report = result.report
    if report is None:
        return
    fetched = sum(f.fetched for f in report.folders)
    changed = sum(f.flags_changed + f.gone + f.expunged for f in report.folders)
    if fetched or changed:
        echo(f"{result.account}: fetched {fetched} messages, {changed} other changes")
    for line in result.failures():
        echo(f"  {line}", err=True)


def _print_state(health: MailboxHealth) -> None:
    if health.state == "watching":
        idle = ", ".join(health.idle_folders) or "none"
        echo(f"{health.account}: watching (IDLE on {idle})")
    elif health.state == "signin_needed":
        echo(
            f"{health.account}: sign-in needed: {health.last_error}; "
            f"run `exoimap login {health.account}`",
            err=True,
        )
    elif health.state == "reconnecting":
        echo(f"{health.account}: reconnecting: {health.last_error}", err=True)


def _seconds(flag: str, default: float, text: str) -> Callable[[F], F]:
    return click.option(flag, type=click.FloatRange(min=1), default=default, help=text)


_WATCH_OPTIONS = (
    _seconds(
        "--idle-interval",
        _DEFAULTS.idle_interval,
        "Seconds before IDLE is re-issued (Exchange ends it after about 30 minutes).",
    ),
    _seconds(
        "--poll-interval",
        _DEFAULTS.poll_interval,
        "Seconds between STATUS polls of the folders not watched with IDLE.",
    ),
    _seconds(
        "--full-sync-interval",
        _DEFAULTS.full_sync_interval,
        "Seconds between syncs of every folder (catch flag changes anywhere).",
    ),
    click.option(
        "--health-file",
        type=PATH,
        default=None,
        help="Where to write the JSON health file [default: DATA_DIR/run/watch-health.json].",
    ),
)


def watch_options(command: F) -> F:
    """Add the watch's intervals and health file (as ``idle_interval``, ``poll_interval``,
    ``full_sync_interval`` and ``health_file``): for ``watch`` and ``agent --watch``."""
    for option in reversed(_WATCH_OPTIONS):
        command = option(command)
    return command


def watch_settings(
    idle_interval: float, poll_interval: float, full_sync_interval: float
) -> WatchSettings:
    return WatchSettings(
        idle_interval=idle_interval,
        poll_interval=poll_interval,
        full_sync_interval=full_sync_interval,
    )


@click.command("watch")
@account_names("watch")
@watch_options
@metrics_port_option
def watch(
    *,
    names: tuple[str, ...],
    all_accounts: bool,
    idle_interval: float,
    poll_interval: float,
    full_sync_interval: float,
    health_file: Path | None,
    metrics_port: int | None,
) -> None:
    """Keep archives current: IDLE on INBOX and Sent, poll the other folders, sync what
    changed, reconnect after network loss; runs until stopped (Ctrl-C or SIGTERM)."""
    paths = Paths.from_env()
    config = load_config(paths)
    accounts = select_accounts(config, names, all_accounts)
    settings = watch_settings(idle_interval, poll_interval, full_sync_interval)
    lean_tls_buffers()  # about three idle TLS connections a mailbox, for as long as it runs
    service = WatchService(
        health_file=HealthFile(health_file or default_health_file(paths)),
        on_change=_print_state,
        on_sync=_print_sync,
    )
    healths: list[MailboxHealth] = []
    with (
        auditing(
            paths, config.audit, key=audit_key_for(paths), listeners=metrics_listeners(metrics_port)
        ),
        metrics_endpoint(metrics_port),
        resident.resident() as kept,
    ):
        try:
            healths = kept.runner.run(
                serve_watch(accounts, paths, watch_provider, settings, service, kept=kept)
            )
        except (KeyboardInterrupt, asyncio.CancelledError):
            echo("watch stopped", err=True)
    if healths and all(h.state == "signin_needed" for h in healths):
        raise click.exceptions.Exit(EXIT_SIGN_IN)
    raise click.exceptions.Exit(EXIT_OK)
