"""``exoimap account``: add, list, set-secret."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from exoimap.auth.refresh_status import last_failure
from exoimap.auth.setup_help import next_steps
from exoimap.auth.vault import Vault, terminal_prompt
from exoimap.cli.app import PATH, Group
from exoimap.config import (
    CLOUDS,
    FLOWS,
    MECHANISMS,
    Paths,
    load_config,
    parse_config,
    write_account,
)
from exoimap.errors import ConfigError, ExoimapError
from exoimap.secrets import Secret
from exoimap.words import plural


@click.group("account", cls=Group, no_args_is_help=True)
def app() -> None:
    """Add and inspect accounts (mailboxes)."""


def _interactive() -> bool:
    return sys.stdin.isatty()


def _ask(values: dict[str, Any], key: str, text: str, *, default: str | None = None) -> None:
    if key in values or not _interactive():
        return
    answer = click.prompt(text, default=default or "", show_default=bool(default))
    if answer.strip():
        values[key] = answer.strip()


@app.command("add")
@click.argument("name", help="A short name for the account, e.g. 'work'.")
@click.option("--email", help="The mailbox address.")
@click.option("--flow", help=f"How to sign in: {', '.join(FLOWS)} (default device).")
@click.option("--cloud", help=f"Microsoft cloud: {', '.join(CLOUDS)} (default worldwide).")
@click.option("--tenant", help="Tenant id or verified domain (needed for app-only).")
@click.option("--client-id", help="Application (client) ID of the Entra app registration.")
@click.option("--certificate", type=PATH, help="PEM or PFX file for flow client-certificate.")
@click.option("--token-command", help="Command that prints a bearer token (flow token-command).")
@click.option("--authority", help="Authority URL https://host/tenant (cloud custom).")
@click.option("--imap-host", help="IMAP server (default: the cloud's).")
@click.option("--imap-port", type=int, help="IMAP port (default 993).")
@click.option("--smtp-host", help="SMTP submission server for the proxy (default: the cloud's).")
@click.option("--smtp-port", type=int, help="SMTP submission port, STARTTLS (default 587).")
@click.option("--ca-file", type=PATH, help="CA bundle to trust (custom clouds).")
@click.option("--archive", type=PATH, help="Where this account's archive goes.")
@click.option("--username", help="IMAP user name when it differs from the address.")
@click.option("--mechanism", help=f"SASL mechanism: {', '.join(MECHANISMS)}.")
@click.option("--starttls/--no-starttls", default=None, help="Use STARTTLS on port 143.")
@click.option("--max-connections", type=int, help="Parallel IMAP connections (default 4).")
@click.option("--replace/--no-replace", default=False, help="Overwrite an existing account.")
def add(
    *,
    name: str,
    email: str | None,
    flow: str | None,
    cloud: str | None,
    tenant: str | None,
    client_id: str | None,
    certificate: Path | None,
    token_command: str | None,
    authority: str | None,
    imap_host: str | None,
    imap_port: int | None,
    smtp_host: str | None,
    smtp_port: int | None,
    ca_file: Path | None,
    archive: Path | None,
    username: str | None,
    mechanism: str | None,
    starttls: bool | None,
    max_connections: int | None,
    replace: bool,
) -> None:
    """Add an account to config.toml (asks for missing values in a terminal), then print the
    exact steps that remain (app registration, Exchange PowerShell, sign-in)."""
    given: dict[str, Any] = {
        "email": email,
        "flow": flow,
        "cloud": cloud,
        "tenant": tenant,
        "client_id": client_id,
        "certificate": str(certificate) if certificate else None,
        "token_command": token_command,
        "authority": authority,
        "imap_host": imap_host,
        "imap_port": imap_port,
        "smtp_host": smtp_host,
        "smtp_port": smtp_port,
        "ca_file": str(ca_file) if ca_file else None,
        "archive": str(archive) if archive else None,
        "username": username,
        "mechanism": mechanism,
        "starttls": starttls,
        "max_connections": max_connections,
    }
    values = {k: v for k, v in given.items() if v is not None}
    _ask(values, "email", "Mailbox address")
    _ask(values, "flow", f"Sign-in flow ({', '.join(FLOWS)})", default="device")
    chosen_flow = values.get("flow", "device")
    if chosen_flow == "token-command":
        _ask(values, "token_command", "Command that prints a token")
        _ask(values, "imap_host", "IMAP server host name")
    elif values.get("mechanism") not in ("plain", "login"):
        _ask(values, "cloud", f"Cloud ({', '.join(CLOUDS)})", default="worldwide")
        _ask(values, "client_id", "Application (client) ID")
        app_only = chosen_flow in ("client-secret", "client-certificate")
        _ask(
            values,
            "tenant",
            "Tenant id or domain" + ("" if app_only else " (empty: any work account)"),
        )
        if chosen_flow == "client-certificate":
            _ask(values, "certificate", "Certificate file (PEM or PFX)")
        if values.get("cloud") == "custom":
            _ask(values, "authority", "Authority URL (https://host/tenant)")
            _ask(values, "imap_host", "IMAP server host name")
            _ask(values, "ca_file", "CA file to trust (empty: the system's)")
    paths = Paths.from_env()
    account = parse_config({"accounts": {name: values}}, paths.config_file).account(name)
    path = write_account(account, paths, replace=replace)
    click.echo(f"Added account {name!r} to {path}.")
    click.echo("")
    click.echo(next_steps(account))


@app.command("list")
def list_accounts() -> None:
    """List the configured accounts and whether each is signed in."""
    config = load_config()
    if not config.accounts:
        click.echo(f"No accounts in {config.path}. Add one with `exoimap account add NAME`.")
        return
    vault = Vault.from_paths()
    for name, account in sorted(config.accounts.items()):
        if account.flow == "token-command":
            state = "token from command"
        elif account.mechanism in ("plain", "login"):
            state = "password stored" if vault.has_account_secret(name) else "no password stored"
        elif vault.has_token_cache(name):
            state = _signed_in_state(account, vault)
        else:
            state = "not signed in"
        click.echo(f"{name}\t{account.email}\t{account.cloud}\t{account.flow}\t{state}")


def _signed_in_state(account: Any, vault: Vault) -> str:
    """What is known about a stored sign-in: a refresh that failed since, or how long the
    refresh token has been idle (Microsoft ends it after 90 idle days)."""
    from exoimap.auth.provider import REFRESH_TOKEN_INACTIVITY_LIMIT  # msal: not for `add`

    name = account.name
    failure = last_failure(vault.directory, name)
    if failure is not None:
        return f"signed in (last refresh failed: {failure.reason}; run `exoimap login {name}`)"
    last = _last_used(account, vault)
    if last is None:
        return "signed in"
    idle = time.time() - last
    state = f"signed in, refresh token used {plural(round(idle / 86400), 'day')} ago"
    if idle > REFRESH_TOKEN_INACTIVITY_LIMIT * 0.8:
        state += f" (expires after 90 idle days: run `exoimap login {name}`)"
    return state


def _last_used(account: Any, vault: Vault) -> float | None:
    from exoimap.auth.provider import TokenProvider

    try:
        return TokenProvider(account, vault=vault).refresh_token_last_used()
    except ExoimapError:
        return None  # the vault key is not at hand (no passphrase): just leave it out


@app.command("set-secret")
@click.argument("name", help="The account.")
def set_secret(name: str) -> None:
    """Store the account's secret encrypted: the client secret (client-secret flow), the
    certificate's passphrase (client-certificate), or the IMAP password (PLAIN/LOGIN).
    Reads it from stdin, or asks in a terminal; never from the command line."""
    config = load_config()
    config.account(name)  # the account must exist
    if _interactive():
        import getpass

        value = getpass.getpass("Secret: ")
        if getpass.getpass("Repeat the secret: ") != value:
            raise ConfigError("the two entries differ; nothing was stored")
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise ConfigError("no secret was given; nothing was stored")
    Vault.from_paths(prompt=terminal_prompt()).set_account_secret(name, Secret(value))
    click.echo(f"Stored the secret for {name!r} (encrypted).")
