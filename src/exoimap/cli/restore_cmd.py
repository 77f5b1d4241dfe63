"""``exoimap restore NAME``: a thin wrapper over :mod:`exoimap.app.restore` that prints what
was restored (or, with ``--dry-run``, would be) and picks the exit code."""

from __future__ import annotations

import datetime as _dt
import functools

import click

from exoimap.app import resident
from exoimap.app.restore import RestoreOptions, RestoreRequest, restore_account
from exoimap.audit import auditing
from exoimap.auth.audit_key import audit_key_for
from exoimap.cli.copy_report import copy_exit_code
from exoimap.cli.progress import SyncDisplay
from exoimap.cli.provider import account_provider
from exoimap.config import Paths, load_config

__all__ = ["restore"]


def _day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> _dt.date | None:
    if value is None:
        return None
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2024-03-31") from None


def _options(
    *,
    folder: tuple[str, ...],
    exclude: tuple[str, ...],
    since: _dt.date | None,
    until: _dt.date | None,
    message_id: tuple[str, ...],
    include_deleted: bool,
    merge: bool,
    into: str | None,
    dry_run: bool,
    max_size: int | None,
) -> RestoreOptions:
    if merge and into:
        raise click.UsageError("--merge and --into exclude each other: choose one")
    return RestoreOptions(
        folders=folder,
        exclude=exclude,
        since=since,
        until=until,
        message_ids=message_id,
        include_deleted=include_deleted,
        mode="merge" if merge else "into" if into else "new",
        into=into,
        dry_run=dry_run,
        max_message_size=max_size * 1024 * 1024 if max_size else None,
    )


@click.command("restore")
@click.argument("name", help="The account whose archive is restored.")
@click.option("--to", "to", default=None, help="Restore into this account (default: NAME).")
@click.option("--folder", multiple=True, help="Only folders matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Leave out folders matching this glob.")
@click.option(
    "--since", metavar="DATE", callback=_day, help="Only messages received on or after this date."
)
@click.option(
    "--until", metavar="DATE", callback=_day, help="Only messages received on or before this date."
)
@click.option("--message-id", multiple=True, help="Only the message with this Message-ID.")
@click.option("--include-deleted", is_flag=True, help="Also messages deleted on the server since.")
@click.option("--merge", is_flag=True, help="Back into their own folders (skip what is there).")
@click.option("--into", default=None, help="Under this folder (keeping the hierarchy).")
@click.option("--max-size", type=click.IntRange(min=1), help="Skip messages over N MB.")
@click.option("--dry-run", is_flag=True, help="Show what would be restored; change nothing.")
def restore(
    *,
    name: str,
    to: str | None,
    folder: tuple[str, ...],
    exclude: tuple[str, ...],
    since: _dt.date | None,
    until: _dt.date | None,
    message_id: tuple[str, ...],
    include_deleted: bool,
    merge: bool,
    into: str | None,
    max_size: int | None,
    dry_run: bool,
) -> None:
    """Restore messages from an account's archive into a mailbox, each exactly once.

    By default into a new folder "Restored <date time>" (nothing in the mailbox is
    touched); run again or after an interruption, only what is missing is copied.
    """
    options = _options(
        folder=folder,
        exclude=exclude,
        since=since,
        until=until,
        message_id=message_id,
        include_deleted=include_deleted,
        merge=merge,
        into=into,
        dry_run=dry_run,
        max_size=max_size,
    )
    paths = Paths.from_env()
    config = load_config(paths)
    account = config.account(name)
    target = config.account(to) if to else account
    request = RestoreRequest(account, target, account_provider(target), paths, options)
    with auditing(paths, config.audit, key=audit_key_for(paths)), SyncDisplay() as display:
        result = resident.run(
            restore_account(
                request,
                on_progress=functools.partial(display.progress, name),
                on_net_event=functools.partial(display.net_event, name),
            )
        )
    raise click.exceptions.Exit(copy_exit_code(name, "restore", target.name, result))
