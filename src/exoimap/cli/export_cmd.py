"""``exoimap export NAME --format mbox|eml|maildir OUT``: the archive in a standard format."""

from __future__ import annotations

import asyncio
import datetime as _dt
from pathlib import Path

import click

from exoimap.app.export import FORMATS, ExportOptions, export_account
from exoimap.audit import auditing
from exoimap.auth.audit_key import audit_key_for
from exoimap.cli.app import EXIT_OK, EXIT_PARTIAL, PATH
from exoimap.cli.output import echo
from exoimap.config import Paths, load_config
from exoimap.words import byte_size, plural

_DAY = click.DateTime(formats=["%Y-%m-%d"])


@click.command("export")
@click.argument("name", help="The account.")
@click.argument(
    "out",
    type=PATH,
    help="Where to write: a new or empty directory (mbox, maildir) or zip file (eml).",
)
@click.option(
    "--format",
    "format_name",
    type=click.Choice(list(FORMATS)),
    required=True,
    help="mbox: one mboxrd file per folder; eml: a zip of .eml files; maildir: a Maildir++ tree.",
)
@click.option("--folder", "folders", multiple=True, help="Only folders matching this glob.")
@click.option("--exclude", multiple=True, help="Leave out folders matching this glob.")
@click.option("--since", type=_DAY, help="Messages received on or after this day (UTC).")
@click.option("--until", type=_DAY, help="Messages received on or before this day (UTC).")
@click.option(
    "--include-deleted", is_flag=True, help="Also messages and folders deleted on the server."
)
def export(  # noqa: PLR0917 - click passes one argument per option
    name: str,
    out: Path,
    format_name: str,
    folders: tuple[str, ...],
    exclude: tuple[str, ...],
    since: _dt.datetime | None,
    until: _dt.datetime | None,
    include_deleted: bool,
) -> None:
    """Export the account's archive to OUT (reads only the archive; OUT must be new or empty)."""
    options = ExportOptions(
        format=format_name,
        folders=folders,
        exclude=exclude,
        since=since.date() if since else None,
        until=until.date() if until else None,
        include_deleted=include_deleted,
    )
    paths = Paths.from_env()
    config = load_config(paths)
    account = config.account(name)
    with auditing(paths, config.audit, key=audit_key_for(paths)):
        result = asyncio.run(export_account(account, paths, out, options))
    for note in result.notes:
        echo(f"note: {note}")
    for line in result.failed:
        echo(f"skipped: {line}", err=True)
    click.echo(
        f"{name}: exported {plural(result.messages, 'message')} from "
        f"{plural(result.folders, 'folder')}, {byte_size(result.bytes)}, as {result.format} "
        f"to {result.out}."
    )
    raise click.exceptions.Exit(EXIT_OK if result.ok else EXIT_PARTIAL)
