"""``exoimap vault``: the encrypted store's key."""

from __future__ import annotations

from pathlib import Path

import click

from exoimap.auth.vault import KEY_FILE_ENV, Vault, create_key_file
from exoimap.cli.app import PATH, Group


@click.group("vault", cls=Group, no_args_is_help=True)
def app() -> None:
    """The encrypted vault for tokens and secrets."""


@app.command("create-key-file")
@click.argument(
    "path",
    type=PATH,
    required=False,
    help=f"Where to create it (default: ${KEY_FILE_ENV} or <data>/vault.key).",
)
def create_key_file_cmd(path: Path | None) -> None:
    """Create a random vault key file (0600) for machines with no keyring and no one to type
    a passphrase. Used when a new vault is created and neither a keyring nor a passphrase is
    available. Keep it as safe as the mail itself."""
    target = path or Vault.from_paths().key_file
    create_key_file(target)
    click.echo(f"Created {target} (mode 0600).")
    if path is not None:
        click.echo(f"Set {KEY_FILE_ENV}={target} so exoimap finds it.")


@app.command("status")
def status() -> None:
    """Say where the vault is and how its key is obtained (opens the vault)."""
    vault = Vault.from_paths()
    if not vault.exists():
        click.echo(f"No vault yet at {vault.directory}; it is created on the first sign-in.")
        return
    click.echo(f"{vault.directory}: key from {vault.key_source}")
