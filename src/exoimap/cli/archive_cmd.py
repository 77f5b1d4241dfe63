"""``exoimap archive stats NAME...``: what an account's archive holds (read from its index)."""

from __future__ import annotations

import asyncio

import click
from rich.cells import cell_len

from exoimap.app.checks import archive_stats
from exoimap.audit import auditing
from exoimap.auth.audit_key import audit_key_for
from exoimap.cli.account_names import account_names, for_each_account, select_accounts
from exoimap.cli.app import EXIT_OK, Group
from exoimap.config import AccountConfig, Config, Paths, load_config
from exoimap.untrusted import shown
from exoimap.words import byte_size, noun, plural, sentence


@click.group("archive", cls=Group, no_args_is_help=True)
def app() -> None:
    """Look into local archives."""


@app.command("stats")
@account_names("look into")
def stats(names: tuple[str, ...], all_accounts: bool) -> None:
    """Folders, messages and bytes in the account's archive (no server needed)."""
    paths = Paths.from_env()
    config = load_config(paths)
    accounts = select_accounts(config, names, all_accounts)

    def one(account: AccountConfig) -> int:
        _stats(account, paths, config)
        return EXIT_OK

    raise click.exceptions.Exit(for_each_account(accounts, one))


def _stats(account: AccountConfig, paths: Paths, config: Config) -> None:
    name = account.name
    with auditing(paths, config.audit, key=audit_key_for(paths)):
        result = asyncio.run(archive_stats(account, paths))
    click.echo(f"The archive at {result.root} holds:")
    # folder names come from the server: never a control character on the terminal
    names = {f.name: shown(f.name) for f in result.folders}
    # columns by display width: "共有" takes four cells, "Zürich" six
    width = max((cell_len(n) for n in names.values()), default=6)
    for folder in sorted(result.folders, key=lambda f: f.name):
        notes = []
        if folder.gone:
            notes.append(f"{folder.gone} deleted on the server")
        if folder.gone_folder:
            notes.append("folder gone from the server")
        extra = f"  ({'; '.join(notes)})" if notes else ""
        label = names[folder.name]
        padding = " " * (width - cell_len(label))
        click.echo(
            f"  {label}{padding}  {folder.messages:>8} {noun(folder.messages, 'message'):<8}  "
            f"{byte_size(folder.bytes):>10}{extra}"
        )
    for note in result.recovery_notes:
        click.echo(sentence(f"repaired on opening: {shown(note)}"))
    click.echo(
        f"{name}: {plural(result.messages, 'message')}, {plural(len(result.folders), 'folder')}, "
        f"{plural(result.bytes, 'byte')} ({byte_size(result.bytes)})."
    )
