"""``exoimap migrate SRC DST``: a thin wrapper over :mod:`exoimap.app.migrate`."""

from __future__ import annotations

import functools

import click

from exoimap.app import resident
from exoimap.app.migrate import MigrateOptions, MigrateRequest, migrate_account
from exoimap.audit import auditing
from exoimap.auth.audit_key import audit_key_for
from exoimap.cli.copy_report import copy_exit_code
from exoimap.cli.progress import SyncDisplay
from exoimap.cli.provider import account_provider
from exoimap.config import Paths, load_config

__all__ = ["migrate"]


def _maps(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    maps: dict[str, str] = {}
    for value in values:
        source, sep, target = value.partition("=")
        if not sep or not source or not target:
            raise click.BadParameter(f"{value!r} is not SRC=DST (e.g. 'Old Sent=Sent Items')")
        maps[source] = target
    return maps


@click.command("migrate")
@click.argument("source", help="The account to copy from.")
@click.argument("target", help="The account to copy into.")
@click.option("--folder", multiple=True, help="Only folders matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Leave out folders matching this glob.")
@click.option(
    "--map", "maps", multiple=True, callback=_maps, metavar="SRC=DST",
    help="Put source folder SRC into target folder DST (repeatable).",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Show what would be copied; change nothing.")
def migrate(
    *,
    source: str,
    target: str,
    folder: tuple[str, ...],
    exclude: tuple[str, ...],
    maps: dict[str, str],
    dry_run: bool,
) -> None:
    """Copy one mailbox into another, each message once (run again: what is new, and flag
    changes). Folders go by role (Sent -> Sent Items), else by name; nothing is deleted."""
    paths = Paths.from_env()
    config = load_config(paths)
    request = MigrateRequest(
        config.account(source),
        config.account(target),
        account_provider,
        paths,
        MigrateOptions(folders=folder, exclude=exclude, maps=maps, dry_run=dry_run),
    )
    with auditing(paths, config.audit, key=audit_key_for(paths)), SyncDisplay() as display:
        result = resident.run(
            migrate_account(
                request,
                on_progress=functools.partial(display.progress, source),
                on_net_event=functools.partial(display.net_event, source),
            )
        )
    raise click.exceptions.Exit(copy_exit_code(source, "migrate", target, result))
