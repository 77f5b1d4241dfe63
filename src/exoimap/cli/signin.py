"""``exoimap login NAME`` and ``exoimap logout NAME``."""

from __future__ import annotations

import time

import click

from exoimap.audit import auditing
from exoimap.auth.audit_key import audit_key_for
from exoimap.auth.provider import TokenInfo, TokenProvider
from exoimap.auth.vault import Vault, terminal_prompt
from exoimap.config import Paths, load_config


def provider_for(name: str) -> TokenProvider:
    """The account's token provider, with a vault that may ask for its passphrase."""
    account = load_config().account(name)
    return TokenProvider(account, vault=Vault.from_paths(prompt=terminal_prompt()))


def describe_expiry(info: TokenInfo) -> str:
    if info.expires_at == float("inf"):
        return "unknown expiry"
    left = info.expires_at - time.time()
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info.expires_at))
    return f"valid until {when} ({left / 60:.0f} min)"


@click.command("login")
@click.argument("name", help="The account.")
def login(name: str) -> None:
    """Sign in (device code, browser, or app-only credentials) and store the tokens encrypted."""
    paths = Paths.from_env()
    config = load_config(paths)
    provider = TokenProvider(config.account(name), vault=Vault.from_paths(prompt=terminal_prompt()))
    provider.check_vault()  # before the audit key (kept in the vault) and any sign-in
    with auditing(paths, config.audit, key=audit_key_for(paths)):
        info = provider.login()  # the provider records the token request or its failure
    who = info.claims.user if info.claims and info.claims.user else provider.username
    click.echo(f"Signed in {name!r} as {who}; access token {describe_expiry(info)}.")
    for warning in info.warnings:
        click.echo(f"warning: {warning}", err=True)


@click.command("logout")
@click.argument("name", help="The account.")
def logout(name: str) -> None:
    """Remove the account's stored tokens from this computer (the config stays)."""
    provider = TokenProvider(load_config().account(name), vault=Vault.from_paths())
    if provider.logout():
        click.echo(f"Removed the stored sign-in of {name!r}.")
    else:
        click.echo(f"{name!r} had no stored sign-in.")
