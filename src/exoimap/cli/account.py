"""``exoimap account``: add, list, set-secret."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from exoimap.auth.provider import REFRESH_TOKEN_INACTIVITY_LIMIT, TokenProvider
from exoimap.auth.setup_help import next_steps
from exoimap.auth.vault import Vault, terminal_prompt
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

app = typer.Typer(help="Add and inspect accounts (mailboxes).", no_args_is_help=True)


def _interactive() -> bool:
    return sys.stdin.isatty()


def _ask(values: dict[str, Any], key: str, text: str, *, default: str | None = None) -> None:
    if key in values or not _interactive():
        return
    answer = typer.prompt(text, default=default or "", show_default=bool(default))
    if answer.strip():
        values[key] = answer.strip()


@app.command("add")
def add(  # noqa: PLR0917 - typer maps each parameter to one option
    name: Annotated[str, typer.Argument(help="A short name for the account, e.g. 'work'.")],
    email: Annotated[str | None, typer.Option(help="The mailbox address.")] = None,
    flow: Annotated[
        str | None, typer.Option(help=f"How to sign in: {', '.join(FLOWS)} (default device).")
    ] = None,
    cloud: Annotated[
        str | None, typer.Option(help=f"Microsoft cloud: {', '.join(CLOUDS)} (default worldwide).")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Tenant id or verified domain (needed for app-only).")
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="Application (client) ID of the Entra app registration.")
    ] = None,
    certificate: Annotated[
        Path | None, typer.Option(help="PEM or PFX file for flow client-certificate.")
    ] = None,
    token_command: Annotated[
        str | None, typer.Option(help="Command that prints a bearer token (flow token-command).")
    ] = None,
    authority: Annotated[
        str | None, typer.Option(help="Authority URL https://host/tenant (cloud custom).")
    ] = None,
    imap_host: Annotated[
        str | None, typer.Option(help="IMAP server (default: the cloud's).")
    ] = None,
    imap_port: Annotated[int | None, typer.Option(help="IMAP port (default 993).")] = None,
    ca_file: Annotated[
        Path | None, typer.Option(help="CA bundle to trust (custom clouds).")
    ] = None,
    archive: Annotated[Path | None, typer.Option(help="Where this account's archive goes.")] = None,
    username: Annotated[
        str | None, typer.Option(help="IMAP user name when it differs from the address.")
    ] = None,
    mechanism: Annotated[
        str | None, typer.Option(help=f"SASL mechanism: {', '.join(MECHANISMS)}.")
    ] = None,
    starttls: Annotated[
        bool | None, typer.Option("--starttls/--no-starttls", help="Use STARTTLS on port 143.")
    ] = None,
    max_connections: Annotated[
        int | None, typer.Option(help="Parallel IMAP connections (default 4).")
    ] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite an existing account.")] = False,
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
    typer.echo(f"Added account {name!r} to {path}.")
    typer.echo("")
    typer.echo(next_steps(account))


@app.command("list")
def list_accounts() -> None:
    """List the configured accounts and whether each is signed in."""
    config = load_config()
    if not config.accounts:
        typer.echo(f"No accounts in {config.path}. Add one with `exoimap account add NAME`.")
        return
    vault = Vault.from_paths()
    now = time.time()
    for name, account in sorted(config.accounts.items()):
        if account.flow == "token-command":
            state = "token from command"
        elif account.mechanism in ("plain", "login"):
            state = "password stored" if _has_secret(vault, name) else "no password stored"
        elif vault.has_token_cache(name):
            state = "signed in"
            last = _last_used(account, vault)
            if last is not None:
                days = (now - last) / 86400
                state += f", refresh token used {days:.0f} days ago"
                if now - last > REFRESH_TOKEN_INACTIVITY_LIMIT * 0.8:
                    state += f" (expires after 90 idle days: run `exoimap login {name}`)"
        else:
            state = "not signed in"
        typer.echo(f"{name}\t{account.email}\t{account.cloud}\t{account.flow}\t{state}")


def _has_secret(vault: Vault, name: str) -> bool:
    return (vault.directory / "account-secret" / f"{name}.bin").exists()


def _last_used(account: Any, vault: Vault) -> float | None:
    try:
        return TokenProvider(account, vault=vault).refresh_token_last_used()
    except ExoimapError:
        return None  # the vault key is not at hand (no passphrase): just leave it out


@app.command("set-secret")
def set_secret(
    name: Annotated[str, typer.Argument(help="The account.")],
) -> None:
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
    typer.echo(f"Stored the secret for {name!r} (encrypted).")
