"""``exoimap config``: where the configuration is, and what it says."""

from __future__ import annotations

import click
import tomli_w

from exoimap.cli.app import Group
from exoimap.config import Paths, account_to_table, load_config
from exoimap.logs import redact


@click.group("config", cls=Group, no_args_is_help=True)
def app() -> None:
    """Show the configuration."""


@app.command("path")
def path() -> None:
    """Print the path of the config file (it need not exist yet)."""
    click.echo(str(Paths.from_env().config_file))


@app.command("show")
def show() -> None:
    """Print the validated configuration as TOML, with anything secret-looking masked."""
    config = load_config()
    document: dict[str, object] = {
        "logging": {k: str(v) for k, v in vars(config.logging).items() if v is not None},
        "audit": {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in vars(config.audit).items()
            if v is not None
        },
        "accounts": {name: account_to_table(acc) for name, acc in config.accounts.items()},
    }
    click.echo(f"# {config.path}")
    click.echo(redact(tomli_w.dumps(document)), nl=False)
